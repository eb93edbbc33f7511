/**
 * `npm run bench`: CPU cost per request of the Worker, measured inside workerd.
 *
 * Builds `bench/worker.ts` exactly like a deploy (`wrangler deploy --dry-run --minify`, same
 * wrangler.toml), runs it with wrangler's local test harness, and times cases inside the
 * isolate: each case runs n times in one request and the isolate reports the elapsed time.
 * Locally workerd's clock advances during CPU work (in production it is frozen between I/O),
 * with 1 ms resolution, so batches are sized to take about BATCH_MS each. Cases are
 * interleaved over several rounds and medians reported, because the machine is shared.
 *
 * Prints µs/request per case and, as its last line, `full/bare ratio: <x>`, computed on costs
 * net of the harness (`request`: building the Request and reading the response, which the
 * runtime does in production). Exits 1 when the ratio is over GOAL.
 *
 * The app runs as deployed, with in-memory KV, always-allowing rate limiters and a stubbed
 * Village (bench/worker.ts says why each). Console lines are built but dropped inside the
 * isolate unless `--console`: locally each one costs what the harness's log capture costs
 * (`--detail` shows it as `log-line`), which says nothing about a deployed Worker.
 *
 * Options: `--rounds N` (default 7), `--detail` (also time single parts, for profiling),
 * `--console` (emit console lines for real).
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, renameSync, rmSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { createTestHarness } from "wrangler";

/** The goal from issue 5: the full path at most 1.5 times a bare Hono pass-through. */
export const GOAL = 1.5;
const BATCH_MS = 250;
const MAIN = ["full", "bare", "token", "validation", "request"];
/** Cases that run the app: each iteration arms a timer, and workerd allows 10,000 per request. */
const APP_CASES = new Set([
  "full",
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
    rounds: { type: "string", default: "7" },
    detail: { type: "boolean", default: false },
    console: { type: "boolean", default: false },
  },
});
const rounds = Number(args.rounds);
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 50) throw new Error("--rounds must be 1..50");
const cases = args.detail ? [...MAIN, ...DETAIL] : MAIN;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

rmSync(outdir, { recursive: true, force: true });
execFileSync(
  resolve(root, "node_modules/.bin/wrangler"),
  ["deploy", "bench/worker.ts", "--dry-run", "--minify", "--outdir", outdir, "--config", "wrangler.toml"],
  {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  },
);
// The harness loads the prebuilt bundle under the name of wrangler.toml's `main` (src/index.ts).
renameSync(resolve(outdir, "worker.js"), resolve(outdir, "index.js"));

const server = createTestHarness({
  root,
  workers: [
    {
      configPath: "./wrangler.toml",
      prebuiltWorkerDir: outdir,
      vars: { VILLAGE_API_BASE: "https://village.bench.test", VILLAGE_NETWORK_ID: "bench-network" },
      secrets: { VILLAGE_API_KEY: `bench-key-${crypto.randomUUID()}` },
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

try {
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
    const spread = (xs: number[]) => `${Math.min(...xs).toFixed(0)}..${Math.max(...xs).toFixed(0)}`;
    console.log(
      `${name.padEnd(18)} cpu ${median(cpu).toFixed(1).padStart(7)} (${spread(cpu)})   clock ${median(wall).toFixed(1).padStart(7)} (${spread(wall)})`,
    );
  }
  const harness = us("request");
  const full = us("full") - harness;
  const bare = us("bare") - harness;
  console.log(`by ${metric}, net of the harness: full ${full.toFixed(1)} µs, bare ${bare.toFixed(1)} µs`);
  const ratio = full / bare;
  console.log(`full/bare ratio: ${ratio.toFixed(2)}`);
  if (!(ratio <= GOAL)) process.exitCode = 1;
} finally {
  await server.close();
}
