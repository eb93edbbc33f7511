/**
 * `npm run bench:ab -- --base <git ref>`: the working tree against another commit, in one run,
 * alternating, so that a change's effect is read against the same spell of the shared machine.
 * The base commit's files are exported (`git archive`) into .bench/ab-base and built with
 * this tree's node_modules.
 *
 * - HTTP (`--rounds N`, default 15; 0 skips): one bench Worker under `workerd serve` holding
 *   this tree's app and floor and the base's app (same isolate, same process); each round sends
 *   the same change to each in turn, one request at a time, and reads the process's CPU time
 *   around each. Prints each app's `full/floor` and this tree's `full` over the base's, as
 *   ratios of the medians per request.
 * - Startup (`--startup-rounds N`, default 15; 0 skips): the deployed Worker (src/index.ts) of
 *   each tree and the bare Hono hello-world, measured as `npm run bench` measures startup, in
 *   rotating order. Prints each side's startup ratio and this tree's active time over the base's
 *   (ratios of medians), and the same by process CPU time (perf/startup.ts, cpuStartupUs).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  type BenchTarget,
  buildBenchWorker,
  median,
  processCpuNs,
  sendChange,
  startBenchServer,
} from "./bench-http.ts";
import { build, measureStartups } from "./startup.ts";

const root = resolve(import.meta.dirname, "..");
const { values: args } = parseArgs({
  options: {
    base: { type: "string", default: "HEAD" },
    rounds: { type: "string", default: "15" },
    "startup-rounds": { type: "string", default: "15" },
  },
});
const rounds = Number(args.rounds);
const startupRounds = Number(args["startup-rounds"]);
for (const [name, n] of [
  ["--rounds", rounds],
  ["--startup-rounds", startupRounds],
] as const) {
  if (!Number.isInteger(n) || n < 0 || n > 50) throw new Error(`${name} must be 0..50`);
}

const baseDir = resolve(root, ".bench/ab-base");
const git = (...a: string[]) => execFileSync("git", a, { cwd: root, encoding: "utf8" }).trim();
const commit = git("rev-parse", "--verify", `${args.base}^{commit}`);
rmSync(baseDir, { recursive: true, force: true });
mkdirSync(baseDir, { recursive: true });
execFileSync("sh", ["-c", `git archive ${commit} | tar -x -C "${baseDir}"`], { cwd: root });

const range = (xs: number[]) => `${Math.min(...xs).toFixed(2)}..${Math.max(...xs).toFixed(2)}`;

console.log(`A/B: this tree (new) against ${args.base} = ${commit.slice(0, 12)} (base)`);

/** Requests per target and round (a fresh audit namespace each round). */
const BATCH = 300;

try {
  if (rounds > 0) {
    // One bench Worker holding both apps: this tree's perf/worker.ts with the base's
    // src/index.ts added as `base-full`, so that both run in the same isolate and process.
    const entry = resolve(root, ".bench/ab-entry.ts");
    writeFileSync(
      entry,
      [
        `import base from ${JSON.stringify(join(baseDir, "src/index.ts"))};`,
        'import bench, { TARGETS } from "../perf/worker.ts";',
        'TARGETS["base-full"] = base;',
        "export default bench;",
        "",
      ].join("\n"),
    );
    const server = await startBenchServer({
      bundle: buildBenchWorker(resolve(root, ".bench/ab-build"), { minify: true, entry }),
    });
    try {
      // Per request, targets interleaved one by one: the CPU time of one request (workerd
      // is idle between requests, so its threads' times are settled when read); medians over
      // thousands of requests do not move with a slow spell of the shared machine.
      const one = async (target: BenchTarget) => {
        const before = processCpuNs(server.pid);
        await sendChange(server, target);
        return (processCpuNs(server.pid) - before) / 1000;
      };
      const cells: BenchTarget[] = ["base-full", "full", "floor"];
      for (let i = 0; i < 300; i++) for (const t of cells) await one(t);
      const us: Record<string, number[]> = Object.fromEntries(cells.map((t) => [t, []]));
      for (let r = 0; r < rounds; r++) {
        await fetch(`${server.url}/reset`, { method: "POST" });
        for (let i = 0; i < BATCH; i++) {
          const order = cells.map((_, k) => cells[(k + i) % cells.length]);
          for (const t of order) us[t].push(await one(t));
        }
      }
      const q = (xs: number[]) => median(xs).toFixed(0);
      console.log(
        `over HTTP, one isolate, ${rounds * BATCH} requests each, interleaved, median µs per request: base full ${q(us["base-full"])}, new full ${q(us.full)}, floor ${q(us.floor)}`,
      );
      const ratio = (a: number[], b: number[]) => median(a) / median(b);
      console.log(
        `full/floor: base ${ratio(us["base-full"], us.floor).toFixed(3)}, new ${ratio(us.full, us.floor).toFixed(3)}`,
      );
      // The same ratio per round of BATCH requests, for its spread.
      const perRound = Array.from({ length: rounds }, (_, r) => {
        const slice = (xs: number[]) => xs.slice(r * BATCH, (r + 1) * BATCH);
        return ratio(slice(us.full), slice(us["base-full"]));
      });
      console.log(
        `full new/base: ${ratio(us.full, us["base-full"]).toFixed(3)} (rounds of ${BATCH}: ${range(perRound)})`,
      );
    } finally {
      server.close();
    }
  }
  if (startupRounds > 0) {
    const dir = resolve(root, ".bench/ab-startup");
    const { active, cpu } = await measureStartups(
      {
        base: build("src/index.ts", join(dir, "base"), true, baseDir),
        new: build("src/index.ts", join(dir, "new"), true, root),
        hello: build("perf/hello.ts", join(dir, "hello")),
      },
      startupRounds,
    );
    const ms = (xs: number[]) => (median(xs) / 1000).toFixed(1);
    console.log(
      `startup active, ${startupRounds} rounds, medians: base ${ms(active.base)} ms, new ${ms(active.new)} ms, hello ${ms(active.hello)} ms`,
    );
    const ratio = (a: number[], b: number[]) => (median(a) / median(b)).toFixed(2);
    console.log(
      `startup ratio (of medians): base ${ratio(active.base, active.hello)}, new ${ratio(active.new, active.hello)}; new/base ${ratio(active.new, active.base)}`,
    );
    console.log(
      `startup by process CPU, medians: base ${ms(cpu.base)} ms, new ${ms(cpu.new)} ms, hello ${ms(cpu.hello)} ms; ratio base ${ratio(cpu.base, cpu.hello)}, new ${ratio(cpu.new, cpu.hello)}; new/base ${ratio(cpu.new, cpu.base)}`,
    );
  }
} finally {
  rmSync(baseDir, { recursive: true, force: true });
}
