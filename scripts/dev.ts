/**
 * `npm start`: `wrangler dev` on 127.0.0.1:8787, in one of two modes.
 * - Sandbox (no VILLAGE_API_KEY in .dev.vars): a local Village sandbox on 127.0.0.1:8788, a demo
 *   token in the local TOKENS state, and a ready `curl` line. Nothing leaves the machine.
 * - Real Village (.dev.vars has VILLAGE_API_KEY): plain `wrangler dev` with those credentials.
 * Both modes switch the token API on (TOKEN_ADMIN=on), mint a 12-hour `tokens:admin` token for the
 * token CLI and, once the Worker answers, write `.wrangler/dev-server.json` (0600: url, pid, that
 * token) for the CLIs to find it (scripts/lib/server.ts); the file is removed on exit.
 * Options: --port N, --sandbox-port N, --persist-to DIR, --sandbox (ignore .dev.vars credentials).
 * Both modes sign the audit trail with AUDIT_SIGNING_KEY from .dev.vars, else with a local key
 * made once per state folder (scripts/lib/audit-key.ts), and run `--test-scheduled`, so
 * `curl "http://127.0.0.1:8787/__scheduled?cron=*+*+*+*+*"` runs the audit digest (and
 * `/cdn-cgi/local/scheduled?cron=...&time=<epoch ms>` runs it as if at that time).
 * Ctrl-C or SIGTERM stops everything; if wrangler exits on its own, this exits with its code.
 * Once the Worker answers, its URL is in .wrangler/dev-server.json (scripts/lib/server.ts), where
 * `npm run audit` and the other CLIs find it; the file goes when this process stops.
 */

import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { parseArgs, parseEnv } from "node:util";
import { DEMO_USERS, type Sandbox, type SandboxUser, startSandbox } from "../fakes/sandbox.ts";
import { ensureLocalKey } from "./lib/audit-key.ts";
import { rotateDemoToken } from "./lib/demo-token.ts";
import { PROJECT_ROOT, WRANGLER_CONFIG, wranglerBin } from "./lib/kv.ts";
import { removeState, STATE_FILE, writeState } from "./lib/server.ts";

const HELP = `Usage: npm start [-- --port 8787] [--sandbox-port 8788] [--persist-to DIR] [--sandbox]
Starts wrangler dev on 127.0.0.1. Without VILLAGE_API_KEY in .dev.vars (or with --sandbox) it runs
against a local Village sandbox and prints a ready curl line; with it, against the real Village.`;

/** Extra sandbox users, so the README's domain-limited token example has someone to change. */
const EXTRA_USERS: SandboxUser[] = [
  { email: "a@example.com", first_name: "Amal", last_name: "Example", phone_number: "+12025550101" },
  { email: "b@other.com", first_name: "Bo", last_name: "Other", phone_number: "+12025550102" },
];
const HEALTH_TIMEOUT_MS = 90_000;

const say = (line = "") => process.stdout.write(`${line}\n`);
const fail = (message: string, code = 2): never => {
  process.stderr.write(`npm start: ${message}\n`);
  process.exit(code);
};

const OPTS = {
  port: { type: "string", default: "8787" },
  "sandbox-port": { type: "string", default: "8788" },
  "persist-to": { type: "string" },
  sandbox: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
} as const;

function options() {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTS }>>;
  try {
    parsed = parseArgs({ options: OPTS, strict: true });
  } catch (err) {
    return fail(`${err instanceof Error ? err.message : String(err)}\n${HELP}`);
  }
  const { values } = parsed;
  if (values.help) {
    say(HELP);
    process.exit(0);
  }
  const port = (name: "port" | "sandbox-port"): number => {
    const n = Number(values[name]);
    return Number.isInteger(n) && n > 0 && n < 65536 ? n : fail(`--${name} must be a port number`);
  };
  return {
    port: port("port"),
    sandboxPort: port("sandbox-port"),
    // wrangler runs in the project folder: hand it an absolute path.
    persistTo: values["persist-to"] === undefined ? undefined : path.resolve(values["persist-to"]),
    forceSandbox: values.sandbox,
  };
}

/** Resolves when 127.0.0.1:port can be bound, so a busy port fails with a clear message. */
function ensureFree(port: number, what: string): Promise<void> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", () => fail(`127.0.0.1:${port} (${what}) is in use; choose another with --${what}`));
    probe.listen(port, "127.0.0.1", () => probe.close(() => resolve()));
  });
}

/** `.dev.vars` as wrangler reads it (dotenv syntax), or {} when absent. */
function devVars(): Record<string, string | undefined> {
  const file = path.join(PROJECT_ROOT, ".dev.vars");
  return existsSync(file) ? parseEnv(readFileSync(file, "utf8")) : {};
}

const opts = options();
const vars = devVars();
const realMode = !opts.forceSandbox && !!vars.VILLAGE_API_KEY?.trim();

let sandbox: Sandbox | undefined;
let wrangler: ChildProcess | undefined;
let stopping = false;

async function stop(code: number): Promise<never> {
  if (!stopping) {
    stopping = true;
    removeState();
    if (wrangler && wrangler.exitCode === null && wrangler.signalCode === null) {
      const exited = new Promise((r) => wrangler?.once("exit", r));
      wrangler.kill("SIGTERM");
      const timer = setTimeout(() => wrangler?.kill("SIGKILL"), 8_000);
      await exited;
      clearTimeout(timer);
    }
    await sandbox?.close();
    removeState();
  }
  process.exit(code);
}
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    say(`\nnpm start: ${signal}, stopping wrangler${sandbox ? " and the sandbox" : ""}...`);
    void stop(0);
  });
}

await ensureFree(opts.port, "port");
const wranglerArgs = ["dev", "--ip", "127.0.0.1", "--port", String(opts.port), "--local"];
wranglerArgs.push("--show-interactive-dev-session=false", "--var", "TOKEN_ADMIN:on", "--test-scheduled");
if (opts.persistTo) wranglerArgs.push("--persist-to", opts.persistTo);
// A signing key from .dev.vars wins (wrangler reads it); otherwise this state folder's local one.
const localSigningKey = vars.AUDIT_SIGNING_KEY?.trim() ? undefined : ensureLocalKey(opts.persistTo);
if (localSigningKey) wranglerArgs.push("--var", `AUDIT_SIGNING_KEY:${localSigningKey}`);

let demo: { id: string; secret: string } | undefined;
let admin: { id: string; secret: string };
if (realMode) {
  const { unstable_readConfig } = await import("wrangler");
  const configured = unstable_readConfig({ config: WRANGLER_CONFIG }, { hideWarnings: true }).vars;
  const base = vars.VILLAGE_API_BASE ?? String(configured.VILLAGE_API_BASE ?? "");
  const network = vars.VILLAGE_NETWORK_ID ?? String(configured.VILLAGE_NETWORK_ID ?? "");
  say("village-edge: REAL Village mode (VILLAGE_API_KEY found in .dev.vars; the key is not shown).");
  say(`  Village API base: ${base}`);
  say(
    `  network id:       ${network || "(empty: set VILLAGE_NETWORK_ID, every PATCH answers 500 until then)"}`,
  );
  say("  Changes you send through this Worker reach that network for real.");
  ({ admin } = await rotateDemoToken({ mint: false, persistTo: opts.persistTo }));
} else {
  await ensureFree(opts.sandboxPort, "sandbox-port");
  sandbox = await startSandbox({ port: opts.sandboxPort, users: [...DEMO_USERS, ...EXTRA_USERS] });
  const rotated = await rotateDemoToken({ mint: true, persistTo: opts.persistTo });
  if (!rotated.demo) throw new Error("no demo token minted");
  demo = rotated.demo;
  admin = rotated.admin;
  wranglerArgs.push(
    "--var",
    `VILLAGE_API_BASE:${sandbox.url}`,
    "--var",
    `VILLAGE_NETWORK_ID:${sandbox.defaultNetwork.id}`,
    "--var",
    `VILLAGE_API_KEY:${sandbox.defaultNetwork.apiKey}`,
  );
}

wrangler = spawn(process.execPath, [wranglerBin(), ...wranglerArgs], {
  cwd: PROJECT_ROOT,
  stdio: ["ignore", "inherit", "inherit"],
  env: {
    ...process.env,
    // Sandbox mode: the --var above is what the Worker gets; this only satisfies wrangler's
    // required-secret check, which otherwise warns that VILLAGE_API_KEY is missing.
    ...(sandbox ? { VILLAGE_API_KEY: sandbox.defaultNetwork.apiKey } : {}),
    ...(localSigningKey ? { AUDIT_SIGNING_KEY: localSigningKey } : {}),
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
  },
});
wrangler.on("error", (err) => {
  process.stderr.write(`npm start: could not run wrangler: ${err.message}\n`);
  void stop(1);
});
wrangler.on("exit", (code, signal) => {
  if (stopping) return;
  process.stderr.write(`npm start: wrangler exited (${signal ?? `code ${code}`}); stopping.\n`);
  void stop(code ?? 1);
});

const origin = `http://127.0.0.1:${opts.port}`;
const deadline = Date.now() + HEALTH_TIMEOUT_MS;
for (;;) {
  if (stopping) await new Promise(() => {}); // stop() exits the process
  try {
    const res = await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(2_000) });
    await res.arrayBuffer();
    if (res.status === 200) break;
  } catch {
    // not listening yet
  }
  if (Date.now() > deadline) {
    process.stderr.write(`npm start: ${origin}/healthz did not answer in ${HEALTH_TIMEOUT_MS / 1000} s\n`);
    await stop(1);
  }
  await new Promise((r) => setTimeout(r, 250));
}

writeState({
  url: origin,
  pid: process.pid,
  started_at: new Date().toISOString(),
  admin_token: admin.secret,
});
process.on("exit", () => removeState());

const rule = "-".repeat(78);
say(`\n${rule}`);
if (realMode || !sandbox || !demo) {
  say(`village-edge is up at ${origin}, talking to the REAL Village (see above).`);
  say(
    "Make a token: npm run token -- create --name me --scope users:write:phone_number --domain example.com",
  );
} else {
  const users = [...DEMO_USERS, ...EXTRA_USERS];
  say(`village-edge is up at ${origin} in SANDBOX mode: a local fake Village, nothing leaves this machine.`);
  say(
    `  Village sandbox:  ${sandbox.url} (network ${sandbox.defaultNetwork.id}); its changes are logged here.`,
  );
  say(`  Demo users:       ${users.map((u) => u.email).join(", ")}`);
  say(`  Demo token:       ${demo.id} "demo", scope users:write (a new one each start; the last is revoked)`);
  say(`  Sandbox received: curl ${sandbox.url}/_sandbox/received`);
  say(
    `  More tokens:      npm run token -- create --name p --scope users:write:phone_number --domain example.com`,
  );
  say("  Try it (answers 202 Accepted):");
  say();
  say(
    `curl -sS -i -X PATCH ${origin}/users/ada@example.com -H 'Authorization: Bearer ${demo.secret}' ` +
      `-H 'Content-Type: application/json' -d '{"first_name":"Ada","last_name":"King"}'`,
  );
}
say(`  API reference:    ${origin}/docs (the contract: ${origin}/openapi.json)`);
say(`  npm run audit finds this server (${path.relative(PROJECT_ROOT, STATE_FILE)}); --url overrides.`);
say(`  Token API:        on (TOKEN_ADMIN); \`npm run token\` uses it with admin token ${admin.id}`);
say(`  Audit digest:     curl "${origin}/__scheduled?cron=*+*+*+*+*"  (closed hours; README: audit digests)`);
say(`  Verify the trail: npm run audit -- verify${opts.persistTo ? ` --persist-to ${opts.persistTo}` : ""}`);
say(rule);
say("Ctrl-C stops everything.");
