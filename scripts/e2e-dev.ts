/**
 * End-to-end check of `npm start` and the token CLI, as a new user would do it: `npm run e2e`.
 * 1. `npm start` (sandbox mode) on free ports; the printed `curl` line, run verbatim through
 *    `sh -c`, answers 202 and the change shows at the sandbox.
 * 2. `npm run token -- create --name p --scope users:write:phone_number --domain example.com --json`:
 *    phone change for a@example.com 202; first_name change 403; phone change for b@other.com 403;
 *    nothing reached the sandbox for the two refusals.
 * 3. A forged `Host` that turns the path into a query is refused (400), nothing forwarded.
 * 4. `token list` never prints the secret (nor its hash); `token revoke` works, then the token gets 401.
 * 5. `npm run audit` finds that `npm start` (on a free, non-default port) through its state file,
 *    without flags; `--url` and `VILLAGE_EDGE_URL` override it; usage errors exit 2 in both CLIs,
 *    which read durations alike (`90m`); once npm start stops, the state file is gone.
 * Isolation: both `npm start` and the token CLI get `--persist-to <fresh temp folder>`, so the
 * developer's `.wrangler/state` (tokens, demo token) is never read or changed, and `--sandbox`, so
 * credentials in `.dev.vars` are never used. Children run in their own process group, killed on
 * exit. Hard limit: 120 s. Last line: `e2e: N passed, M failed`.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { check, checklist } from "./lib/cli.ts";
import { PROJECT_ROOT } from "./lib/kv.ts";
import { cliJson, type DevStack, freePort, groupAlive, killGroup, startDevStack } from "./lib/stack.ts";

const TIMEOUT_MS = 120_000;
const NETWORK = "sandbox-network";

const { step, fail, summary, counts } = checklist("e2e");
let stack: DevStack | undefined;
const state = mkdtempSync(path.join(tmpdir(), "village-edge-e2e-"));
// This run's npm start leaves its URL here (not in the project's .wrangler/), and the CLIs it
// starts look here; no VILLAGE_EDGE_URL of the developer's may steer them.
const stateFile = path.join(state, "dev-server.json");
process.env.VILLAGE_EDGE_STATE_FILE = stateFile;
delete process.env.VILLAGE_EDGE_URL;

function finish(code: number): never {
  killGroup(stack?.child.pid);
  rmSync(state, { recursive: true, force: true });
  const result = summary();
  process.exit(code || result);
}

const hardStop = setTimeout(() => {
  fail(`overall time limit of ${TIMEOUT_MS / 1000} s reached`);
  dumpServerOutput();
  finish(1);
}, TIMEOUT_MS);
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => finish(1));

function dumpServerOutput(): void {
  const tail = (stack?.output ?? []).join("").split("\n").slice(-60);
  console.log(`  --- last lines of npm start ---\n${tail.map((l) => `  | ${l}`).join("\n")}`);
}

/** Runs a command to completion (bounded), capturing its output. */
function run(cmd: string, args: string[], timeoutMs = 60_000, env: Record<string, string> = {}) {
  const r = spawnSync(cmd, args, {
    cwd: PROJECT_ROOT,
    encoding: "utf8",
    timeout: timeoutMs,
    env: { ...process.env, ...env },
  });
  return { code: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

const token = (...args: string[]) => run("npm", ["run", "token", "--", ...args, "--persist-to", state]);

if (spawnSync("sh", ["-c", "command -v curl"]).status !== 0) {
  fail("curl is required to run the printed curl line (Debian: apt-get install curl)");
  finish(1);
}

const port = await freePort();
const sandboxPort = await freePort();
stack = startDevStack({ port, sandboxPort, state });
const { origin, sandbox, output, ready } = stack;
console.log(`e2e: npm start on ${origin}, sandbox on ${sandbox}, state in ${state}`);

/**
 * One HTTP exchange on its own connection (`agent: false`): a pooled keep-alive connection can be
 * closed by the server between two steps, which would fail a step for the wrong reason.
 */
function http(
  url: string,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: init.method ?? "GET", headers: init.headers, agent: false },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => {
          text += c;
        });
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.setTimeout(15_000, () => req.destroy(new Error(`${url}: no answer in 15 s`)));
    req.on("error", reject);
    req.end(init.body);
  });
}

const received = async (): Promise<{ email: string; body: string; status: number | string }[]> =>
  JSON.parse((await http(`${sandbox}/_sandbox/networks/${NETWORK}/received`)).text).received;
const patch = (email: string, body: unknown, secret: string) =>
  http(`${origin}/users/${email}`, {
    method: "PATCH",
    headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });

let banner = "";
await step("npm start comes up in sandbox mode, prints one curl line and links /docs", async () => {
  banner = await ready;
  check(banner.includes("SANDBOX mode"), "the banner does not say SANDBOX mode");
  const lines = banner.split("\n").filter((l) => l.startsWith("curl ") && l.includes("-X PATCH"));
  check(lines.length === 1, `expected one PATCH curl line, found ${lines.length}`);
  check(banner.includes(`${origin}/docs`), "the banner does not link the API reference");
  const docs = await http(`${origin}/docs`);
  check(docs.status === 200 && docs.text.includes("<rapi-doc"), `GET /docs: ${docs.status}`);
  const renderer = await http(`${origin}/docs/rapidoc-min.js`);
  check(renderer.status === 200, `GET /docs/rapidoc-min.js (the build step's copy): ${renderer.status}`);
});

await step("the printed curl line, run verbatim, answers 202 and the sandbox has the change", async () => {
  const line = banner.split("\n").find((l) => l.startsWith("curl ") && l.includes("-X PATCH"));
  check(line, "no curl line");
  const r = run("sh", ["-c", line], 30_000);
  check(r.code === 0, `curl exited ${r.code}: ${r.stderr}`);
  check(/^HTTP\/[\d.]+ 202/m.test(r.stdout), `expected 202, got:\n${r.stdout.slice(0, 400)}`);
  const got = await received();
  check(got.length === 1 && got[0].status === 201, `sandbox received ${JSON.stringify(got)}`);
  const user = JSON.parse(
    (await http(`${sandbox}/_sandbox/networks/${NETWORK}/users/ada%40example.com`)).text,
  );
  const sent: Record<string, string> = JSON.parse(got[0].body);
  check(Object.keys(sent).length > 0, "the forwarded change is empty");
  for (const [field, value] of Object.entries(sent)) {
    check(user[field] === value, `the sandbox user does not carry the new ${field}`);
  }
});

let secret = "";
let id = "";
const secrets: string[] = [];
await step("token create --name p --scope users:write:phone_number --domain example.com --json", async () => {
  const r = token(
    "create",
    "--name",
    "p",
    "--scope",
    "users:write:phone_number",
    "--domain",
    "example.com",
    "--json",
  );
  check(r.code === 0, `exit ${r.code}: ${r.stderr}`);
  const created = cliJson<{ token: string; id: string }>(r.stdout);
  secret = created.token;
  id = created.id;
  check(/^vge_[0-9a-f]{72}$/.test(secret) && /^tok_[0-9a-f]{16}$/.test(id), "no token/id in the JSON");
  secrets.push(secret);
});

await step("token create without --json says the secret is shown once", async () => {
  const r = token("create", "--name", "text output", "--scope", "audit:read", "--expires", "1d");
  check(r.code === 0, `exit ${r.code}: ${r.stderr}`);
  check(r.stdout.includes("shown only this once"), "no shown-once warning");
  const shown = /vge_[0-9a-f]{72}/.exec(r.stdout);
  check(shown, "no secret printed");
  secrets.push(shown[0]);
  check(token("create", "--name", "x", "--scope", "users:read").code === 2, "unknown scope is not exit 2");
  check(
    token("create", "--name", "x", "--scope", "audit:read", "--expires", "2020-01-01").code === 2,
    "past expiry",
  );
});

await step("phone change for a@example.com is 202 and reaches the sandbox", async () => {
  const before = (await received()).length;
  const res = await patch("a@example.com", { phone_number: "+1 202 555 0199" }, secret);
  check(res.status === 202, `status ${res.status}: ${res.text}`);
  const got = await received();
  check(got.length === before + 1 && got.at(-1)?.email === "a@example.com", "the sandbox did not get it");
});

await step(
  "first_name change is 403 and phone change for b@other.com is 403; nothing forwarded",
  async () => {
    const before = (await received()).length;
    const name = await patch("a@example.com", { first_name: "Mallory" }, secret);
    check(name.status === 403, `first_name: status ${name.status}`);
    const other = await patch("b@other.com", { phone_number: "+1 202 555 0198" }, secret);
    check(other.status === 403, `b@other.com: status ${other.status}`);
    check((await received()).length === before, "a refused change reached the sandbox");
  },
);

await step(
  "a forged Host that moves the path into the query (x/users/b@example.com?) is 400; nothing forwarded",
  async () => {
    const before = (await received()).length;
    // wrangler dev builds the Worker's URL from Host: this one reads /users/b@example.com?/users/a@...
    const res = await http(`${origin}/users/a@example.com`, {
      method: "PATCH",
      headers: {
        Host: "x/users/b@example.com?",
        Authorization: `Bearer ${secret}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify({ phone_number: "+1 202 555 0197" }),
    });
    check(
      res.status === 400 && res.text.includes("takes no query string"),
      `status ${res.status}: ${res.text}`,
    );
    check((await received()).length === before, "the forged request reached the sandbox");
  },
);

await step("token list and show name the token but never print a secret or its hash", async () => {
  const forbidden = secrets.flatMap((s) => [s, createHash("sha256").update(s).digest("hex")]);
  check(forbidden.length === 4, "expected two tokens from the steps above");
  for (const args of [["list"], ["list", "--json", "--all"], ["show", id], ["show", id, "--json"]]) {
    const r = token(...args);
    check(r.code === 0, `${args.join(" ")}: exit ${r.code}: ${r.stderr}`);
    check(r.stdout.includes(id), `${args.join(" ")} does not show ${id}`);
    const all = r.stdout + r.stderr;
    check(!forbidden.some((f) => all.includes(f)), `${args.join(" ")} printed a secret or its hash`);
  }
});

await step("token revoke works; afterwards the token gets 401 and nothing is forwarded", async () => {
  const r = token("revoke", id);
  check(r.code === 0, `exit ${r.code}: ${r.stderr}`);
  check(r.stdout.includes("about a minute"), "revoke does not mention the propagation delay");
  const before = (await received()).length;
  const res = await patch("a@example.com", { phone_number: "+1 202 555 0197" }, secret);
  check(res.status === 401, `status ${res.status}`);
  check((await received()).length === before, "a revoked token's change reached the sandbox");
  check(token("show", "tok_0000000000000000").code === 1, "show of an unknown id does not exit 1");
});

await step("npm start left its URL in its state file, readable by its owner only", async () => {
  const saved = JSON.parse(readFileSync(stateFile, "utf8")) as { url: string; pid: number };
  check(saved.url === origin, `state file url ${saved.url}, expected ${origin}`);
  check(Number.isInteger(saved.pid), "no pid in the state file");
  check((statSync(stateFile).mode & 0o077) === 0, "the state file is readable by others");
});

let auditToken = "";
const audit = (args: string[], env: Record<string, string> = {}) =>
  run("npm", ["run", "--silent", "audit", "--", ...args], 60_000, { AUDIT_TOKEN: auditToken, ...env });
await step(`npm run audit finds npm start on port ${port} with no flags (token --expires 90m)`, async () => {
  check(port !== 8787, "the e2e server is on the default port");
  const r = token("create", "--name", "reviewer", "--scope", "audit:read", "--expires", "90m", "--json");
  check(r.code === 0, `token create --expires 90m: exit ${r.code}: ${r.stderr}`);
  auditToken = cliJson<{ token: string }>(r.stdout).token;
  secrets.push(auditToken);
  const listed = audit(["--since", "90m", "--json"]);
  check(listed.code === 0, `audit: exit ${listed.code}: ${listed.stderr}`);
  const entries = JSON.parse(listed.stdout) as { email?: string }[];
  check(
    entries.some((e) => e.email === "a@example.com"),
    "the audit trail of this run is not listed",
  );
});

await step("--url and VILLAGE_EDGE_URL override the state file", async () => {
  const closed = `http://127.0.0.1:${await freePort()}`;
  const flagged = audit(["--url", closed]);
  check(
    flagged.code === 1 && flagged.stderr.includes(closed),
    `--url: exit ${flagged.code}: ${flagged.stderr}`,
  );
  const env = audit([], { VILLAGE_EDGE_URL: closed });
  check(env.code === 1 && env.stderr.includes(closed), `VILLAGE_EDGE_URL: exit ${env.code}: ${env.stderr}`);
  check(audit(["--url", origin, "--limit", "1"]).code === 0, "--url to the running server fails");
});

await step("usage errors exit 2 in both CLIs; both read 90m and refuse 90x alike", async () => {
  for (const [what, r] of [
    ["audit --since 90x", audit(["--since", "90x"])],
    ["audit --bogus", audit(["--bogus"])],
    ["audit --limit 0", audit(["--limit", "0"])],
    [
      "token create --expires 90x",
      token("create", "--name", "x", "--scope", "audit:read", "--expires", "90x"),
    ],
    ["token --bogus", token("list", "--bogus")],
  ] as const) {
    check(r.code === 2, `${what}: exit ${r.code}, expected 2: ${r.stderr}`);
  }
});

await step("token show says what a token may do: fields, servers only or origins, domains", async () => {
  const r = token("show", id);
  check(r.code === 0, `show: exit ${r.code}: ${r.stderr}`);
  check(/may\s+change phone_number/.test(r.stdout), `no "may change phone_number":\n${r.stdout}`);
  check(/from\s+servers only/.test(r.stdout), `no "from servers only":\n${r.stdout}`);
  check(/users\s+emails in example\.com/.test(r.stdout), `no "users emails in example.com":\n${r.stdout}`);
});

await step("no token secret of this run appears in the server's logs (demo banner aside)", async () => {
  const logs = output.join("").replace(banner, "");
  check(!secrets.some((s) => logs.includes(s)), "a token secret appears in the server output");
});

await step("SIGTERM stops npm start, wrangler and the sandbox", async () => {
  const pid = stack?.child.pid;
  check(pid, "no server pid");
  process.kill(-pid, "SIGTERM");
  for (let i = 0; i < 150 && groupAlive(pid); i++) await new Promise((r) => setTimeout(r, 100));
  check(!groupAlive(pid), "a process of npm start was still running 15 s after SIGTERM");
  for (const p of [port, sandboxPort]) {
    const res = await http(`http://127.0.0.1:${p}/`).then(
      () => "answered",
      () => "refused",
    );
    check(res === "refused", `127.0.0.1:${p} still answers after stop`);
  }
  check(!existsSync(stateFile), "the state file is still there after npm start stopped");
  const r = audit([]);
  check(
    r.code === 1 && r.stderr.includes("no village-edge server found"),
    `audit: exit ${r.code}: ${r.stderr}`,
  );
});

clearTimeout(hardStop);
if (counts.failed) dumpServerOutput();
finish(counts.failed === 0 ? 0 : 1);
