/**
 * `npm run bench`: CPU per request of the Worker in workerd, the full PATCH path against a bare
 * Hono pass-through of the same request, both built into one bundle in this run. A third
 * target, `floor`, is the pass-through plus only the runtime work the design requires (token
 * hash and lookup, both rate limiters, body read and rewritten, three intent writes awaited,
 * outcome write after the response, the five upstream headers and the deadline, one log line,
 * a JSON answer; see perf/worker.ts): an implementation of this design that does that work
 * cannot cost less, so `full/floor` is our own code's cost.
 *
 * The bundle is `perf/worker.ts` built exactly like a deploy (`wrangler deploy --dry-run
 * --minify`, same wrangler.toml); it runs the app as deployed, with in-memory KV (tokens and the
 * audit trail, so its writes are measured, and counted), always-allowing rate limiters, and a
 * one-user token.
 *
 * 1. In the isolate (wrangler's test harness): each case runs n times in one request and the
 *    isolate times the batch; workerd's CPU time is read from /proc too. Locally the clock
 *    advances during CPU work (1 ms resolution), so batches take about BATCH_MS. Cases: the
 *    full path, the floor and the bare pass-through against a stubbed Village, the token check and the
 *    validation alone, and `request` (building the incoming Request and reading a response:
 *    the harness's share of both); `--detail` adds request classes and single parts. Console
 *    lines are built but dropped here unless `--console`: locally each costs what the harness's
 *    log capture costs (`log-line`), which says nothing about a deployed Worker.
 * 2. Over HTTP (`workerd serve`, no proxies in front): the same request sent in turn to the
 *    app, the floor and the pass-through, a local upstream answering 201, the real console; workerd's
 *    CPU time per request, which includes what the runtime does for every request, as the CPU
 *    time of a deployed Worker does. Then a few changes to the app alone, counting the KV
 *    operations they make.
 * 3. Startup (perf/startup.ts): this Worker's startup active CPU time over a bare Hono
 *    hello-world's, both measured as `wrangler check startup` measures them, in rotating
 *    order over `--startup-rounds` rounds, with the startup floor (perf/startup-floor.ts:
 *    the hello-world plus what every change needs loaded) measured alongside.
 *
 * Cases are interleaved over rounds and medians reported: the machine is shared. Part 2's
 * ratios are paired, the median over rounds of each round's ratio; part 3's is the ratio of
 * the two medians (see perf/startup.ts). The last three
 * lines are `full/floor ratio: <x>` (part 2), `startup ratio: <y>` (part 3) and
 * `kv ops per change: writes <w>, reads <r>`; docs/performance.md says what each means. The
 * command exits 0 whatever the figures: it measures, it has no goal inside it.
 *
 * Options: `--rounds N` (default 9), `--startup-rounds N` (default 15), `--detail`,
 * `--console`, `--only a,b` (these cases besides full, floor, bare and request), `--http-only`
 * (parts 2 and 3), `--startup-only` (part 3).
 */
import { readdirSync, readFileSync, renameSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { createTestHarness } from "wrangler";
import {
  type BenchTarget,
  buildBenchWorker,
  median,
  processCpuNs,
  sendChange,
  startBenchServer,
} from "./bench-http.ts";
import { startupRounds } from "./startup.ts";

const BATCH_MS = 250;
/** Requests per target and round in the HTTP half. */
const HTTP_BATCH = 400;
/** Changes sent to the app alone, after the rounds, to count KV operations per change. */
const KV_COUNT_CHANGES = 20;
const MAIN = ["full", "floor", "bare", "token", "validation", "request"];
/** Cases that run the app: each iteration arms a timer, and workerd allows 10,000 per request. */
const APP_CASES = new Set([
  "full",
  "floor",
  "bare",
  "healthz",
  "no-token",
  "bad-checksum",
  "unknown-token",
  "invalid-body",
]);
const MAX_APP_BATCH = 8000;
const DETAIL = [
  "healthz",
  "no-token",
  "bad-checksum",
  "unknown-token",
  "invalid-body",
  "log-line",
  "hash",
  "kv-get",
  "token-shape",
  "config",
  "email",
  "json",
  "names",
  "phone",
  "upstream-request",
];

const root = resolve(import.meta.dirname, "..");
const outdir = resolve(root, ".bench/build");
const { values: args } = parseArgs({
  options: {
    rounds: { type: "string", default: "9" },
    detail: { type: "boolean", default: false },
    console: { type: "boolean", default: false },
    only: { type: "string" },
    "http-only": { type: "boolean", default: false },
    "startup-rounds": { type: "string", default: "15" },
    "startup-only": { type: "boolean", default: false },
  },
});
const rounds = Number(args.rounds);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) throw new Error("--rounds must be 1..50");
const startupRoundCount = Number(args["startup-rounds"]);
if (!Number.isInteger(startupRoundCount) || startupRoundCount < 1 || startupRoundCount > 50) {
  throw new Error("--startup-rounds must be 1..50");
}
const known = [...MAIN, ...DETAIL];
const cases = args.only
  ? [...new Set([...MAIN.slice(0, 3), "request", ...args.only.split(",")])]
  : args.detail
    ? known
    : MAIN;
for (const name of cases) if (!known.includes(name)) throw new Error(`--only: there is no case ${name}`);

/** `min..max` of some samples, rounded to µs. */
const spread = (xs: number[]) => `${Math.min(...xs).toFixed(0)}..${Math.max(...xs).toFixed(0)}`;

// The harness loads the prebuilt bundle under the name of wrangler.toml's `main` (src/index.ts).
const bundle = resolve(outdir, "index.js");
renameSync(buildBenchWorker(outdir, { minify: true }), bundle);

// Offline, miniflare's look-up of Request.cf data fails with a stack trace: use its fallback.
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
process.env.WRANGLER_SEND_METRICS ??= "false";
const server = createTestHarness({
  root,
  workers: [
    {
      configPath: "./wrangler.toml",
      prebuiltWorkerDir: outdir,
      vars: { VILLAGE_API_BASE: "https://village.bench.test", VILLAGE_NETWORK_ID: "bench-network" },
      secrets: {
        VILLAGE_API_KEY: `bench-key-${crypto.randomUUID()}`,
        AUDIT_SIGNING_KEY: `bench:${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`,
      },
    },
  ],
});

/** The workerd processes started below this process (Linux /proc), for their CPU time. */
function workerdPids(): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // the process ended meanwhile
    }
  }
  const out: number[] = [];
  const walk = (pid: number) => {
    for (const child of children.get(pid) ?? []) {
      if (readFileSync(`/proc/${child}/comm`, "utf8").trim() === "workerd") out.push(child);
      walk(child);
    }
  };
  walk(process.pid);
  return out;
}

/** Nanoseconds of CPU all threads of these processes have run (schedstat), or NaN off Linux. */
function cpuNs(pids: number[]): number {
  let total = 0;
  for (const pid of pids) {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // the thread ended meanwhile
      }
    }
  }
  return total;
}

let pids: number[] = [];
let closed = false;

type Target = Exclude<BenchTarget, "base-full">;
const TARGETS: Target[] = ["full", "floor", "bare"];

/**
 * The HTTP half: the same bundle under `workerd serve`, the same PATCH sent over HTTP to the
 * app, the floor and the bare pass-through in turn, a local upstream answering 201, workerd's
 * CPU time per request (medians over the rounds). Before each batch the bench Worker starts a
 * fresh in-memory audit namespace, outside the measured span.
 */
async function httpRounds(): Promise<{
  samples: Record<Target, number[]>;
  kv: { reads: number; writes: number };
}> {
  const server = await startBenchServer({ bundle });
  try {
    const batch = async (target: Target, n: number) => {
      await fetch(`${server.url}/reset`, { method: "POST" });
      const before = processCpuNs(server.pid);
      for (let i = 0; i < n; i++) await sendChange(server, target);
      return (processCpuNs(server.pid) - before) / 1000 / n;
    };
    for (const target of TARGETS) await batch(target, 300);
    const samples: Record<Target, number[]> = { full: [], floor: [], bare: [] };
    for (let round = 0; round < rounds; round++) {
      // Rotate the order so no target always runs right after another.
      const order = TARGETS.map((_, i) => TARGETS[(i + round) % TARGETS.length]);
      for (const target of order) samples[target].push(await batch(target, HTTP_BATCH));
    }
    console.log(
      `over HTTP, ${HTTP_BATCH} requests a round: ${TARGETS.map((t) => `${t} ${spread(samples[t])}`).join(", ")} µs`,
    );
    await fetch(`${server.url}/kv-counts`, { method: "POST" });
    for (let i = 0; i < KV_COUNT_CHANGES; i++) await sendChange(server, "full");
    const counts = (await (await fetch(`${server.url}/kv-counts`)).json()) as {
      reads: number;
      writes: number;
    };
    return {
      samples,
      kv: { reads: counts.reads / KV_COUNT_CHANGES, writes: counts.writes / KV_COUNT_CHANGES },
    };
  } finally {
    server.close();
  }
}

/** Runs one batch; returns µs per iteration by the isolate's clock and by workerd's CPU time. */
async function runBatch(name: string, n: number): Promise<{ wall: number; cpu: number }> {
  const before = cpuNs(pids);
  const mode = args.console ? "&console=real" : "";
  const res = await server.fetch(`/run?case=${name}&n=${n}${mode}`, { method: "POST" });
  const body = (await res.json()) as { ms?: number; error?: string };
  const cpu = (cpuNs(pids) - before) / 1000 / n;
  server.clearLogs();
  if (!res.ok || body.ms === undefined) throw new Error(`case ${name}: ${body.error ?? res.status}`);
  return { wall: (body.ms * 1000) / n, cpu };
}

/** Part 1, in the isolate: prints each case's medians and the ratios net of the harness. */
async function isolateRounds(): Promise<void> {
  await server.listen();
  try {
    pids = workerdPids();
  } catch {
    pids = [];
  }
  const useCpu = pids.length > 0;
  // Warm up (JIT, lazy set-up) and size each case's batch to about BATCH_MS.
  const sizes = new Map<string, number>();
  for (const name of cases) {
    let n = 20;
    for (;;) {
      const ms = ((await runBatch(name, n)).wall * n) / 1000;
      if (ms >= BATCH_MS / 4 || n >= 2_000_000) {
        const size = Math.max(20, Math.round((n * BATCH_MS) / Math.max(ms, 1)));
        sizes.set(name, APP_CASES.has(name) ? Math.min(size, MAX_APP_BATCH) : size);
        break;
      }
      n *= 4;
    }
  }
  const samples = new Map<string, { wall: number[]; cpu: number[] }>(
    cases.map((c) => [c, { wall: [], cpu: [] }]),
  );
  for (let round = 0; round < rounds; round++) {
    // Rotate the order so no case always runs right after another.
    const order = cases.map((_, i) => cases[(i + round) % cases.length]);
    for (const name of order) {
      const { wall, cpu } = await runBatch(name, sizes.get(name) ?? 0);
      if (wall === 0) throw new Error("the isolate's clock did not advance: cannot time in workerd");
      samples.get(name)?.wall.push(wall);
      samples.get(name)?.cpu.push(cpu);
    }
  }
  const metric = useCpu ? "cpu" : "wall";
  const us = (name: string) => median(samples.get(name)?.[metric] ?? []);
  console.log(
    `µs per request, median of ${rounds} rounds: workerd CPU time${useCpu ? "" : " (unavailable)"}, isolate clock`,
  );
  for (const name of cases) {
    const { wall, cpu } = samples.get(name) ?? { wall: [], cpu: [] };
    console.log(
      `${name.padEnd(18)} cpu ${median(cpu).toFixed(1).padStart(7)} (${spread(cpu)})   clock ${median(wall).toFixed(1).padStart(7)} (${spread(wall)})`,
    );
  }
  const harness = us("request");
  const [full, floor, bare] = TARGETS.map((t) => us(t) - harness);
  console.log(
    `in-isolate, net of the harness (the handler's own work): full ${full.toFixed(1)} µs, floor ${floor.toFixed(1)} µs, bare ${bare.toFixed(1)} µs; full/bare ${(full / bare).toFixed(2)}, floor/bare ${(floor / bare).toFixed(2)}`,
  );
}

const fmt = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));

try {
  let last: string[] = [];
  if (!args["startup-only"]) {
    if (!args["http-only"]) await isolateRounds();
    await server.close();
    closed = true;
    const { samples: http, kv } = await httpRounds();
    console.log(
      `over HTTP, workerd CPU per request (runtime + handler + subrequest), medians: ${TARGETS.map((t) => `${t} ${median(http[t]).toFixed(1)}`).join(", ")} µs`,
    );
    // Ratios are paired: the median over rounds of each round's ratio (a round's batches run
    // back to back, so a slow spell of the shared machine weighs on both sides of it).
    const pairedRatio = (a: Target, b: Target) => median(http[a].map((x, i) => x / http[b][i]));
    console.log(
      `floor/bare ratio: ${pairedRatio("floor", "bare").toFixed(2)} (the runtime work the design requires, none of our code)`,
    );
    console.log(`full/bare ratio: ${pairedRatio("full", "bare").toFixed(2)}`);
    last = [
      `full/floor ratio: ${pairedRatio("full", "floor").toFixed(2)}`,
      "",
      `kv ops per change: writes ${fmt(kv.writes)}, reads ${fmt(kv.reads)}`,
    ];
  } else {
    await server.close();
    closed = true;
    last = [
      "full/floor ratio: (not measured: --startup-only)",
      "",
      "kv ops per change: (not measured: --startup-only)",
    ];
  }
  const startup = await startupRounds(startupRoundCount);
  const ms = (xs: number[]) => `${(median(xs) / 1000).toFixed(1)} ms (${spread(xs.map((x) => x / 1000))})`;
  console.log(
    `startup active time (wrangler check startup's figure), ${startupRoundCount} rounds, medians: this Worker ${ms(startup.app)}, startup floor ${ms(startup.floor)}, bare Hono hello-world ${ms(startup.hello)}`,
  );
  console.log(
    `startup by process CPU time, same rounds, medians: this Worker ${ms(startup.cpu.app)}, startup floor ${ms(startup.cpu.floor)}, bare Hono hello-world ${ms(startup.cpu.hello)}; ratio ${startup.cpu.ratio.toFixed(2)}`,
  );
  const ofMedians = (a: number[], b: number[]) =>
    median(b) > 0 ? (median(a) / median(b)).toFixed(2) : "(no busy sample in the median round)";
  console.log(
    `startup floor (Hono + zod/mini + the two schemas every change needs, loaded, not built) over the hello-world: active ${ofMedians(startup.floor, startup.hello)}, process CPU ${ofMedians(startup.cpu.floor, startup.cpu.hello)}; this Worker over the floor: active ${ofMedians(startup.app, startup.floor)}, process CPU ${ofMedians(startup.cpu.app, startup.cpu.floor)}`,
  );
  // The bare Worker's import often ends before V8's 1 ms sampler takes a sample: a median of 0
  // would make the ratio infinite. Then the ratio is of the means over the rounds, and when the
  // sampler saw the bare Worker in no round at all, of the process CPU time (said on the line).
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
  last[1] =
    median(startup.hello) > 0
      ? `startup ratio: ${startup.ratio.toFixed(2)}`
      : mean(startup.hello) > 0
        ? `startup ratio: ${(mean(startup.app) / mean(startup.hello)).toFixed(2)} (of the means: the bare Worker's median round had no sample)`
        : `startup ratio: ${startup.cpu.ratio.toFixed(2)} (by process CPU: the sampler saw no busy sample of the bare Worker)`;
  for (const line of last) console.log(line);
} finally {
  if (!closed) await server.close();
}
