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
 * 6. The token CLI goes through the token API of the running `npm start` (its state file): create ->
 *    use -> rotate with a 5 s overlap -> both secrets work -> the overlap ends (waited for, to the
 *    end the rotation printed) -> the old secret gets 401, the new one works -> revoke -> 401; then
 *    `npm run audit -- --token <id>` shows token.create, token.rotate, token.revoke by npm start's
 *    admin token, with the token's use; an admin token minted by the direct KV path is named
 *    `operator:<login>`.
 * 7. The audit trail: `/__scheduled` runs the digest handler; `/cdn-cgi/local/scheduled?time=` (the
 *    same handler, two hours on) digests this hour; `npm run audit -- verify` exits 0; after one
 *    entry is edited with `wrangler kv key put --local` (same state folder) it exits 1 naming it.
 * Isolation: both `npm start` and the token CLI get `--persist-to <fresh temp folder>`, so the
 * developer's `.wrangler/state` (tokens, demo token) is never read or changed, and `--sandbox`, so
 * credentials in `.dev.vars` are never used. Children run in their own process group, killed on
 * exit. Hard limit: 180 s. Last line: `e2e: N passed, M failed`.
 */
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { check, checklist } from "./lib/cli.ts";
import { PROJECT_ROOT, wranglerKv } from "./lib/kv.ts";
import { cliJson, type DevStack, freePort, groupAlive, killGroup, startDevStack } from "./lib/stack.ts";

const TIMEOUT_MS = 180_000;
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

const auditAt = (...args: string[]) =>
  spawnSync("npm", ["run", "-s", "audit", "--", "--url", origin, ...args], {
    cwd: PROJECT_ROOT,
    encoding: "utf8",
    timeout: 60_000,
    env: { ...process.env, AUDIT_TOKEN: reviewer },
  });
let reviewer = "";
let life = { id: "", first: "", second: "", overlapEnd: "" };
await step("the token CLI uses npm start's token API (list names the server)", async () => {
  const r = token("list");
  check(r.code === 0, `exit ${r.code}: ${r.stderr}`);
  check(r.stdout.includes(`in ${origin}`), `list did not go through ${origin}:\n${r.stdout}`);
  const made = token("create", "--name", "e2e reviewer", "--scope", "audit:read", "--json");
  check(made.code === 0, `exit ${made.code}: ${made.stderr}`);
  reviewer = cliJson<{ token: string }>(made.stdout).token;
  secrets.push(reviewer);
});

await step("create -> use -> rotate (5 s overlap) -> both secrets work", async () => {
  const made = token("create", "--name", "e2e rotated", "--scope", "users:write:first_name", "--json");
  check(made.code === 0, `create: exit ${made.code}: ${made.stderr}`);
  const created = cliJson<{ token: string; id: string }>(made.stdout);
  life = { ...life, id: created.id, first: created.token };
  secrets.push(created.token);
  const used = await patch("ada@example.com", { first_name: "Ada" }, life.first);
  check(used.status === 202, `use: status ${used.status}`);
  const r = token("rotate", life.id, "--overlap", "5s", "--json");
  check(r.code === 0, `rotate: exit ${r.code}: ${r.stderr}`);
  const rotated = cliJson<{ token: string; id: string; record: { previous_expires_at?: string } }>(r.stdout);
  check(rotated.id === life.id, "rotate changed the public id");
  check(rotated.token !== life.first && rotated.record.previous_expires_at, "no new secret or overlap end");
  life = { ...life, second: rotated.token, overlapEnd: rotated.record.previous_expires_at ?? "" };
  secrets.push(rotated.token);
  for (const [label, secret] of [
    ["old", life.first],
    ["new", life.second],
  ]) {
    const res = await patch("ada@example.com", { first_name: "Ada" }, secret);
    check(res.status === 202, `${label} secret during the overlap: status ${res.status}`);
  }
});

await step("the overlap ends: the old secret gets 401, the new one works; revoke: 401", async () => {
  const wait = Date.parse(life.overlapEnd) - Date.now() + 250;
  check(wait < 10_000, `overlap end ${life.overlapEnd} is not about 5 s ahead`);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  const old = await patch("ada@example.com", { first_name: "Ada" }, life.first);
  check(old.status === 401, `old secret after the overlap: status ${old.status}`);
  const now = await patch("ada@example.com", { first_name: "Ada" }, life.second);
  check(now.status === 202, `new secret after the overlap: status ${now.status}`);
  const r = token("revoke", life.id);
  check(r.code === 0, `revoke: exit ${r.code}: ${r.stderr}`);
  const after = await patch("ada@example.com", { first_name: "Ada" }, life.second);
  check(after.status === 401, `new secret after revoke: status ${after.status}`);
});

await step(
  "npm run audit -- --token <id> shows created, rotated, revoked by npm start's admin token",
  async () => {
    const r = auditAt("--token", life.id, "--json");
    check(r.status === 0, `audit: exit ${r.status}: ${r.stderr}`);
    const entries = JSON.parse(r.stdout) as { event?: string; token_name: string; outcome: string }[];
    const events = entries.filter((e) => e.event).map((e) => e.event);
    check(
      JSON.stringify(events) === JSON.stringify(["token.revoke", "token.rotate", "token.create"]),
      `lifecycle events: ${JSON.stringify(events)}`,
    );
    check(
      entries.filter((e) => e.event).every((e) => e.token_name === "npm start: local token API"),
      "an entry does not name npm start's admin token",
    );
    const uses = entries.filter((e) => !e.event);
    // Its four accepted changes (old secret twice, new twice); 401s of unknown secrets are logs only.
    check(uses.length === 4 && uses.every((e) => e.outcome === "accepted"), `uses: ${JSON.stringify(uses)}`);
    const table = auditAt("--token", life.id);
    check(table.status === 0 && table.stdout.includes("token.rotate"), `table:\n${table.stdout}`);
  },
);

await step("the demo token npm start mints is in the trail, created by the direct path", async () => {
  const id = /Demo token:\s+(tok_[0-9a-f]{16})/.exec(banner)?.[1];
  check(id, "the banner names no demo token id");
  const listed = auditAt("--token", id, "--json");
  check(listed.status === 0, `audit: exit ${listed.status}: ${listed.stderr}`);
  const events = (JSON.parse(listed.stdout) as { event?: string; token_id: string }[]).filter((e) => e.event);
  check(
    events.length === 1 && events[0].event === "token.create" && events[0].token_id.startsWith("operator:"),
    JSON.stringify(events),
  );
});

await step(
  "an admin token is minted only by the direct path, which the trail names operator:<login>",
  async () => {
    const r = token("create", "--name", "e2e admin", "--scope", "tokens:admin", "--expires", "1d", "--json");
    check(r.code === 0, `exit ${r.code}: ${r.stderr}`);
    const made = cliJson<{ token: string; id: string }>(r.stdout);
    secrets.push(made.token);
    const listed = auditAt("--token", made.id, "--json");
    check(listed.status === 0, `audit: exit ${listed.status}: ${listed.stderr}`);
    const [entry] = JSON.parse(listed.stdout) as { event?: string; token_id: string }[];
    check(entry?.event === "token.create" && entry.token_id.startsWith("operator:"), JSON.stringify(entry));
    const refused = await http(`${origin}/tokens`, {
      method: "POST",
      headers: { Authorization: `Bearer ${made.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        name: "x",
        scopes: ["tokens:admin"],
        expires_at: new Date(Date.now() + 3_600_000).toISOString(),
      }),
    });
    check(refused.status === 403, `an admin token made an admin token over HTTP: ${refused.status}`);
  },
);

await step("GET /__scheduled runs the audit digest handler", async () => {
  const res = await http(`${origin}/__scheduled?cron=*+*+*+*+*`);
  check(res.status === 200, `status ${res.status}: ${res.text}`);
  for (let i = 0; i < 50 && !output.join("").includes('"event":"audit_digest"'); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  check(output.join("").includes('"event":"audit_digest"'), "no audit_digest log line");
});

const verify = () => run("npm", ["run", "-s", "audit", "--", "verify", "--persist-to", state], 60_000);

await step("a digest of this hour (scheduled two hours on), then audit verify exits 0", async () => {
  const later = Date.now() + 2 * 3_600_000;
  const res = await http(`${origin}/cdn-cgi/local/scheduled?cron=*+*+*+*+*&time=${later}`);
  check(res.status === 200, `status ${res.status}: ${res.text}`);
  const r = verify();
  check(r.code === 0, `verify exited ${r.code}:\n${r.stdout}${r.stderr}`);
  check(/verify: clean/.test(r.stdout), `no clean summary:\n${r.stdout}`);
  check(/\b[1-9]\d* digests/.test(r.stdout), `no digest was checked:\n${r.stdout}`);
});

await step(
  "after one entry is edited with wrangler kv key put --local, audit verify exits 1 naming it",
  async () => {
    const kv = wranglerKv("AUDIT", { remote: false, persistTo: state });
    const listed = await kv.list({ prefix: "entry:" });
    const key = listed.keys[0];
    check(key, "no entry in the local AUDIT state");
    const value = await kv.get(key.name, "text");
    if (value === null) throw new Error(`${key.name} has no value`);
    check(value.includes('"request_id":"'), `unexpected entry ${value}`);
    await kv.put(key.name, value.replace('"request_id":"', '"request_id":"edited-'), {
      metadata: key.metadata,
    });
    const r = verify();
    check(r.code === 1, `verify exited ${r.code}:\n${r.stdout}${r.stderr}`);
    check(
      new RegExp(`ALTERED +${key.name}`).test(r.stdout),
      `verify does not name ${key.name}:\n${r.stdout}`,
    );
  },
);

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
