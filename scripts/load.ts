/**
 * Load test: `npm run load [-- --requests 2000 --concurrency 50 --timeout-s 300 --seed 1 --json-out F]`.
 * 1. `npm start` in sandbox mode (wrangler dev + the local Village sandbox) on free loopback ports,
 *    with its state in a fresh temp folder; tokens minted with `npm run token -- create --json` into
 *    that state; sandbox users added through the sandbox's control API.
 * 2. The mix of scripts/lib/load-plan.ts (valid changes, validation errors, bad emails, 401s, 403s,
 *    unknown users, phone floods) at the given concurrency. Valid traffic is spread over enough
 *    tokens that no token passes 90% of the per-token limit in wrangler.toml; the only 429s are the
 *    deliberate phone floods (limit + 1 phone changes to one email).
 * 3. Nothing lost: every answer as planned and no 5xx; the sandbox received exactly the forwarded
 *    requests (by X-Request-Id), once each, with the planned body; the audit trail, read through
 *    `GET /audit` with an audit:read token, holds one intent with its outcome per forwarded request,
 *    one entry per refusal of a valid token, nothing for 401s and 429s; no token in the logs.
 * 4. The accepted requests again, same bodies, emails and concurrency, straight to the sandbox (a
 *    second network seeded with the same users, with its own key and the headers the Worker sends).
 * Prints req/s, p50, p99 of both and their ratio; last line `load: N passed, M failed`. Hard time
 * limit `--timeout-s`; every child runs in its own process group and is killed on any exit.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { WRANGLER_CONFIG } from "./lib/kv.ts";
import {
  type AuditSummary,
  auditProblems,
  forwarded,
  type Received,
  receivedProblems,
  serverErrors,
  settleFloods,
  unanswered,
  unplannedAnswers,
} from "./lib/load-checks.ts";
import { figures, type Outgoing, runPhase } from "./lib/load-client.ts";
import {
  assignTokens,
  foreignAuthorization,
  MINTED,
  type MintedKind,
  type Planned,
  planRequests,
  usersOf,
} from "./lib/load-plan.ts";
import {
  cliJson,
  type DevStack,
  freePort,
  killGroup,
  runningCli,
  startDevStack,
  stopGroup,
  tokenCli,
} from "./lib/stack.ts";

const HELP = `Usage: npm run load [-- --requests N] [--concurrency C] [--timeout-s T] [--seed S] [--json-out FILE]
Defaults: 2000 requests, concurrency 50, 300 s overall, seed 1. Loopback only.`;
const OPTIONS = {
  requests: { type: "string", default: "2000" },
  concurrency: { type: "string", default: "50" },
  "timeout-s": { type: "string", default: "300" },
  seed: { type: "string", default: "1" },
  "json-out": { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const;
function usage(message: string): never {
  console.error(`load: ${message}\n${HELP}`);
  process.exit(2);
}
let flags: ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"];
try {
  flags = parseArgs({ options: OPTIONS, strict: true }).values;
} catch (err) {
  usage(err instanceof Error ? err.message : String(err));
}
if (flags.help) {
  console.log(HELP);
  process.exit(0);
}
function intFlag(name: "requests" | "concurrency" | "timeout-s" | "seed", min: number, max: number): number {
  const n = Number(flags[name]);
  if (Number.isInteger(n) && n >= min && n <= max) return n;
  return usage(`--${name} must be a whole number from ${min} to ${max}`);
}
const TOTAL = intFlag("requests", 100, 100_000);
const CONCURRENCY = intFlag("concurrency", 1, 500);
const TIMEOUT_S = intFlag("timeout-s", 30, 3600);
const SEED = intFlag("seed", 0, 2 ** 31);
// `npm run` runs in the project folder; a relative --json-out means the caller's folder.
const JSON_OUT = flags["json-out"] && path.resolve(process.env.INIT_CWD ?? process.cwd(), flags["json-out"]);

const REQUEST_TIMEOUT_MS = 30_000;
/** How long outcomes (written in `waitUntil`, retried after 1.1 s and 3 s) may take to show. */
const OUTCOME_WAIT_MS = 45_000;
/** Kept back from the hard limit for the checks and the clean-up. */
const RESERVE_MS = 20_000;

const started = Date.now();
/** The 1-minute load average before anything started: the CPUs may be shared with other work. */
const loadBefore = loadavg()[0];
const hardDeadline = started + TIMEOUT_S * 1000;
const state = mkdtempSync(path.join(tmpdir(), "village-edge-load-"));
let stack: DevStack | undefined;
let passed = 0;
let failed = 0;
let finishing = false;

/** Stops every child (group), removes the temp state, prints the summary line, exits. */
async function finish(code: number): Promise<never> {
  if (!finishing) {
    finishing = true;
    for (const pid of runningCli) killGroup(pid);
    await stopGroup(stack?.child.pid, 8_000);
    rmSync(state, { recursive: true, force: true });
    console.log(`load: ${passed} passed, ${failed} failed`);
    process.exit(code);
  }
  return new Promise<never>(() => {}); // the first finish() exits
}
process.on("exit", () => {
  // Last resort (e.g. process.exit elsewhere): synchronous kills and removal.
  for (const pid of runningCli) killGroup(pid);
  killGroup(stack?.child.pid);
  rmSync(state, { recursive: true, force: true });
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    console.log(`\nload: ${signal}, stopping`);
    failed++;
    void finish(1);
  });
}
const fatal = (err: unknown) => {
  console.log(`  FAIL ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  failed++;
  dumpServerOutput();
  void finish(1);
};
process.on("uncaughtException", fatal);
process.on("unhandledRejection", fatal);
setTimeout(() => {
  console.log(`  FAIL overall time limit of ${TIMEOUT_S} s reached (--timeout-s)`);
  failed++;
  dumpServerOutput();
  void finish(1);
}, TIMEOUT_S * 1000).unref();

let dumped = false;
function dumpServerOutput(): void {
  if (!stack || dumped) return;
  dumped = true;
  const tail = stack.output.slice(-40).join("").split("\n").slice(-40);
  console.log(`  --- last lines of npm start ---\n${tail.map((l) => `  | ${l}`).join("\n")}`);
}

/** A named check: prints ok or FAIL with the first problems found. */
function check(name: string, problems: string[]): boolean {
  if (finishing) return false; // interrupted or out of time: what follows is noise
  if (problems.length === 0) {
    passed++;
    console.log(`  ok   ${name}`);
    return true;
  }
  failed++;
  const shown = problems.slice(0, 10).map((p) => `       ${p}`);
  if (problems.length > 10) shown.push(`       ... and ${problems.length - 10} more`);
  console.log(`  FAIL ${name}\n${shown.join("\n")}`);
  return false;
}

/** Must hold to go on at all. */
async function must<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    const value = await fn();
    check(`${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`, []);
    return value;
  } catch (err) {
    check(name, [err instanceof Error ? err.message : String(err)]);
    dumpServerOutput();
    return finish(1);
  }
}

/** A control-plane call (sandbox control API, review API); retried once after a connection error. */
async function call<T>(
  url: string,
  init: RequestInit = {},
): Promise<{ status: number; json: T; headers: Headers }> {
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
      const text = await res.text();
      return { status: res.status, json: (text ? JSON.parse(text) : undefined) as T, headers: res.headers };
    } catch (err) {
      if (attempt >= 2 || init.method === "PATCH") throw err;
    }
  }
}

/** The per-token and per-email phone limits, as wrangler.toml configures them. */
async function rateLimits() {
  const { unstable_readConfig } = await import("wrangler");
  const config = unstable_readConfig({ config: WRANGLER_CONFIG }, { hideWarnings: true });
  const find = (name: string) => {
    const all: { name: string; simple: { limit: number; period: number } }[] = config.ratelimits;
    const rl = all.find((r) => r.name === name);
    if (!rl) throw new Error(`wrangler.toml has no [[ratelimits]] named ${name}`);
    return { limit: rl.simple.limit, periodMs: rl.simple.period * 1000 };
  };
  return {
    token: find("TOKEN_RATE_LIMITER"),
    phone: find("PHONE_RATE_LIMITER"),
    refusal: find("REFUSAL_RATE_LIMITER"),
  };
}

// ---------------------------------------------------------------------------------------------
// Set-up
// ---------------------------------------------------------------------------------------------
const limits = await rateLimits();
const budget = Math.floor(limits.token.limit * 0.9);
const runTag = Math.floor(Math.random() * 0xffffffff)
  .toString(16)
  .padStart(8, "0");
const plan = planRequests(TOTAL, limits.phone.limit, SEED, runTag);
// Each token stays within its budget of audited refusals, so every refusal must have its entry.
const mintCount = assignTokens(plan, budget, limits.refusal.limit);
console.log(
  `load: ${TOTAL} requests at concurrency ${CONCURRENCY}, seed ${SEED}, hard limit ${TIMEOUT_S} s; ` +
    `state in ${state}`,
);

const port = await freePort();
const sandboxPort = await freePort();
const dev = startDevStack({ port, sandboxPort, state });
stack = dev;
const { origin, sandbox } = dev;
/** The sandbox network the Worker forwards to, as `npm start` names it in its banner. */
const networkA = await must(`npm start (sandbox mode) on ${origin}, sandbox on ${sandbox}`, async () => {
  const banner = await dev.ready;
  const id = /\(network ([A-Za-z0-9._-]+)\)/.exec(banner)?.[1];
  if (!id) throw new Error("the banner names no sandbox network");
  return id;
});

const secrets: Record<MintedKind, string[]> = { writer: [], phone: [], reader: [] };
await must(
  `tokens minted with the token CLI: ${mintCount.writer} users:write, ${mintCount.phone} phone-only ` +
    `(example.com), ${mintCount.reader} audit:read; at most ${budget} requests and ` +
    `${limits.refusal.limit} audited refusals each (TOKEN_RATE_LIMITER ${limits.token.limit}/` +
    `${limits.token.periodMs / 1000} s, REFUSAL_RATE_LIMITER ${limits.refusal.limit}/${limits.refusal.periodMs / 1000} s)`,
  async () => {
    for (const kind of Object.keys(MINTED) as MintedKind[]) {
      for (let k = 0; k < mintCount[kind]; k++) {
        const r = await tokenCli(["create", "--name", `load ${kind} ${k}`, ...MINTED[kind], "--json"], state);
        if (r.code !== 0) throw new Error(`token create exited ${r.code}: ${r.stderr.trim().slice(-400)}`);
        secrets[kind].push(cliJson<{ token: string }>(r.stdout).token);
      }
    }
  },
);

const users = usersOf(plan);
const networkB = await must(
  `${users.length} sandbox users added to network ${networkA} and to a new network for the direct run`,
  async () => {
    const chunks = [];
    for (let i = 0; i < users.length; i += 250) chunks.push(users.slice(i, i + 250));
    const created = await call<{ network_id: string; api_key: string }>(`${sandbox}/_sandbox/networks`, {
      method: "POST",
      body: JSON.stringify({ users: chunks[0] ?? [] }),
    });
    if (created.status !== 201) throw new Error(`POST /_sandbox/networks: ${created.status}`);
    for (const [net, from] of [
      [networkA, 0],
      [created.json.network_id, 1],
    ] as const) {
      for (const chunk of chunks.slice(from)) {
        const r = await call(`${sandbox}/_sandbox/networks/${net}/users`, {
          method: "POST",
          body: JSON.stringify({ users: chunk }),
        });
        if (r.status !== 200) throw new Error(`POST /_sandbox/networks/${net}/users: ${r.status}`);
      }
    }
    return { id: created.json.network_id, key: created.json.api_key };
  },
);

// ---------------------------------------------------------------------------------------------
// Proxy phase
// ---------------------------------------------------------------------------------------------
function authorization(p: Planned): string | undefined {
  if (p.token === "writer" || p.token === "phone" || p.token === "reader") {
    return `Bearer ${secrets[p.token][p.slot]}`;
  }
  return foreignAuthorization(p.token);
}
const proxyOut: Outgoing[] = plan.map((p) => {
  const auth = authorization(p);
  return {
    url: `${origin}${p.path}`,
    method: "PATCH",
    headers: {
      "Content-Type": "application/json",
      "X-Request-Id": p.id,
      ...(auth ? { Authorization: auth } : {}),
    },
    body: p.body,
  };
});
console.log(`load: sending ${plan.length} requests through the proxy at concurrency ${CONCURRENCY}...`);
const proxy = await runPhase(proxyOut, CONCURRENCY, REQUEST_TIMEOUT_MS, hardDeadline - RESERVE_MS);
const got = proxy.results;

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------
check("every request was answered (no connection error, no timeout)", unanswered(plan, got));
check("no 5xx", serverErrors(plan, got));
check(
  "every answer has its planned status and problem type, and echoes the request id (floods apart)",
  unplannedAnswers(plan, got),
);
const floodCount = plan.filter((p) => p.flood).length;
{
  const { problems, floods, straddled } = settleFloods(plan, got, limits.phone);
  check(
    `phone floods: ${floods} emails got ${limits.phone.limit + 1} phone changes each; at most ` +
      `${limits.phone.limit} accepted per limiter window, the rest 429 (${straddled} straddled a window)`,
    problems,
  );
}
const nForwarded = plan.filter((p, i) => forwarded(p, got[i])).length;
{
  const r = await call<{ received: Received[] }>(`${sandbox}/_sandbox/networks/${networkA}/received`);
  check(
    `the sandbox received exactly the ${nForwarded} forwarded requests, once each, as sent; none of the refused`,
    r.status === 200 ? receivedProblems(plan, got, r.json.received) : [`the sandbox answered ${r.status}`],
  );
}

/** Every audit entry, through the review API, page by page (bounded). */
async function auditEntries(): Promise<AuditSummary[]> {
  const all: AuditSummary[] = [];
  let cursor: string | null = null;
  const maxPages = Math.ceil(TOTAL / 1000) * 5 + 10;
  for (let page = 0; page < maxPages; page++) {
    const query: string = `limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const r = await call<{ entries: AuditSummary[]; cursor: string | null }>(`${origin}/audit?${query}`, {
      headers: { Authorization: `Bearer ${secrets.reader[0]}` },
    });
    if (r.status !== 200) throw new Error(`GET /audit answered ${r.status}`);
    all.push(...r.json.entries);
    cursor = r.json.cursor;
    if (cursor === null) return all;
  }
  throw new Error(`GET /audit still had a cursor after ${maxPages} pages`);
}

// Outcomes are written in waitUntil after each answer: read until none is pending, within a bound.
const outcomeDeadline = Math.min(Date.now() + OUTCOME_WAIT_MS, hardDeadline - RESERVE_MS);
let entries: AuditSummary[] = [];
let reads = 0;
for (;;) {
  reads++;
  entries = await auditEntries();
  if (!entries.some((e) => e.outcome === "pending") || Date.now() > outcomeDeadline) break;
  await new Promise((r) => setTimeout(r, 1000));
}
{
  const { intents, refusals } = auditProblems(plan, got, entries);
  const nRefusals = plan.filter(
    (p, i) => got[i].status === p.status && (p.audit === "invalid" || p.audit === "denied"),
  ).length;
  check(
    `audit: each of the ${nForwarded} forwarded requests has exactly one intent and its outcome ` +
      `(accepted/not_found), none pending after ${reads} read(s) of GET /audit (${entries.length} entries)`,
    intents,
  );
  check(
    `audit: each of the ${nRefusals} refusals of a valid token has exactly one entry (invalid/denied); ` +
      "none for 401 and 429; no other entries",
    refusals,
  );
}

{
  const all = Object.values(secrets).flat();
  const logs = dev.output.join("");
  check(
    "no token secret appears in the output of npm start (wrangler and sandbox logs)",
    all.filter((s) => logs.includes(s)).map((s) => `a ${s.slice(0, 4)}… token is in the logs`),
  );
}

// ---------------------------------------------------------------------------------------------
// Direct phase: the accepted requests straight to the sandbox
// ---------------------------------------------------------------------------------------------
const acceptedIdx = plan.flatMap((_p, i) => (got[i].status === 202 ? [i] : []));
const directOut: Outgoing[] = acceptedIdx.map((i) => ({
  url: `${sandbox}/networks/${encodeURIComponent(networkB.id)}/users/${encodeURIComponent(plan[i].email ?? "")}`,
  method: "PATCH",
  headers: {
    Authorization: `Bearer ${networkB.key}`,
    "Content-Type": "application/json",
    Accept: "application/json",
    "X-Request-Id": plan[i].id,
    "User-Agent": "village-edge-load",
  },
  body: plan[i].body,
}));
console.log(`load: sending the ${directOut.length} accepted requests straight to the sandbox...`);
const direct = await runPhase(directOut, CONCURRENCY, REQUEST_TIMEOUT_MS, hardDeadline - RESERVE_MS);
{
  const problems = direct.results.flatMap((s, k) =>
    s.status === 201 ? [] : [`${plan[acceptedIdx[k]].id}: ${s.error ?? s.status}`],
  );
  const r = await call<{ received: Received[] }>(`${sandbox}/_sandbox/networks/${networkB.id}/received`);
  if (r.json.received.length !== directOut.length) {
    problems.push(`the sandbox recorded ${r.json.received.length} of ${directOut.length}`);
  }
  check(`direct: all ${directOut.length} accepted requests answered 201 by the sandbox`, problems);
}

// ---------------------------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------------------------
const proxyAll = figures(
  got.filter((s) => !s.error).map((s) => s.ms),
  proxy.seconds,
);
const proxyAccepted = figures(
  acceptedIdx.map((i) => got[i].ms),
  proxy.seconds,
);
const sandboxDirect = figures(
  direct.results.filter((s) => !s.error).map((s) => s.ms),
  direct.seconds,
);
const ratio = (a: number, b: number) => Number((a / b).toPrecision(3));
const ratios = {
  p50: ratio(proxyAccepted.p50_ms, sandboxDirect.p50_ms),
  p99: ratio(proxyAccepted.p99_ms, sandboxDirect.p99_ms),
  throughput: ratio(proxyAll.rps, sandboxDirect.rps),
};
const statuses: Record<string, number> = {};
for (const s of got) {
  const key = s.error ? "error" : String(s.status);
  statuses[key] = (statuses[key] ?? 0) + 1;
}
const classes: Record<string, number> = {};
for (const p of plan) classes[p.cls] = (classes[p.cls] ?? 0) + 1;

const row = (
  label: string,
  f: { requests: number; seconds?: number; rps?: number; p50_ms: number; p99_ms: number },
) =>
  `  ${label.padEnd(24)}${String(f.requests).padStart(8)}${(f.seconds?.toFixed(2) ?? "-").padStart(9)}` +
  `${(f.rps?.toFixed(1) ?? "-").padStart(9)}${f.p50_ms.toFixed(1).padStart(9)}${f.p99_ms.toFixed(1).padStart(9)}`;
console.log("");
console.log(
  `load figures: ${TOTAL} requests, concurrency ${CONCURRENCY}, node ${process.version}, ` +
    `${availableParallelism()} CPUs shared by the client, wrangler dev and the sandbox ` +
    `(1-min load average ${loadBefore.toFixed(2)} before the start)`,
);
console.log(
  `  ${"".padEnd(24)}${"requests".padStart(8)}${"seconds".padStart(9)}${"req/s".padStart(9)}${"p50 ms".padStart(9)}${"p99 ms".padStart(9)}`,
);
console.log(row("proxy, whole mix", proxyAll));
console.log(row("proxy, the 202s in it", { ...proxyAccepted, seconds: undefined, rps: undefined }));
console.log(row("sandbox direct (202s)", sandboxDirect));
console.log(
  `  proxy/sandbox: p50 ${ratios.p50}x, p99 ${ratios.p99}x (the 202s); throughput ${ratios.throughput}x ` +
    "(proxy whole-mix req/s over sandbox req/s)",
);
console.log(
  `  statuses: ${Object.entries(statuses)
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")}; took ${Math.round((Date.now() - started) / 1000)} s in all`,
);

if (JSON_OUT) {
  const report = {
    date: new Date().toISOString(),
    settings: { requests: TOTAL, concurrency: CONCURRENCY, seed: SEED, timeout_s: TIMEOUT_S },
    machine: { node: process.version, cpus: availableParallelism(), loadavg_1m_before: loadBefore },
    proxy: proxyAll,
    proxy_accepted: {
      requests: proxyAccepted.requests,
      p50_ms: proxyAccepted.p50_ms,
      p99_ms: proxyAccepted.p99_ms,
    },
    sandbox_direct: sandboxDirect,
    ratio: ratios,
    statuses,
    classes,
    flood_requests: floodCount,
    checks: { passed, failed },
    total_seconds: Math.round((Date.now() - started) / 1000),
  };
  writeFileSync(JSON_OUT, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`  figures written to ${JSON_OUT}`);
}
if (failed) dumpServerOutput();
await finish(failed === 0 ? 0 : 1);
