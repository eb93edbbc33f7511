/**
 * `npm run bench:profile [-- --target full|floor|bare] [--requests N]`: where the CPU time of
 * one target of `npm run bench` goes. The bench Worker (perf/worker.ts), built unminified so
 * that functions keep their names, runs under `workerd serve` with its V8 inspector on
 * loopback; after a warm-up, N requests are sent over HTTP while the V8 sampling profiler
 * runs. Prints the busy time per request by source module and by function (self time), and
 * writes the profile to `.bench/<target>.cpuprofile` (open it in Chrome DevTools).
 *
 * The profiler slows everything down and console lines are dropped (with an
 * inspector attached each one is also sent to it), so read shares, not absolute times: the
 * figures of record come from `npm run bench`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { type BenchTarget, buildBenchWorker, freePort, sendChange, startBenchServer } from "./bench-http.ts";
import { devtoolsSession } from "./devtools.ts";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values: args } = parseArgs({
  options: {
    target: { type: "string", default: "full" },
    requests: { type: "string", default: "5000" },
    top: { type: "string", default: "30" },
  },
});
const TARGETS: BenchTarget[] = ["full", "floor", "bare"];
const target = TARGETS.find((t) => t === args.target);
if (!target) throw new Error("--target must be full, floor or bare");
const requests = Number(args.requests);
if (!Number.isInteger(requests) || requests < 100 || requests > 100_000)
  throw new Error("--requests: 100..100000");

const root = resolve(import.meta.dirname, "..");
const bundle = buildBenchWorker(resolve(root, ".bench/profile-build"), { minify: false });
const inspectorPort = await freePort();
const server = await startBenchServer({ bundle, inspectorAddr: `127.0.0.1:${inspectorPort}` });

/** One DevTools-protocol session with the Worker's isolate. */
async function inspector() {
  const list = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  return devtoolsSession(list[0].webSocketDebuggerUrl);
}

let profile: Profile;
try {
  // An attached inspector is sent every console line too: the bench Worker drops them.
  const one = () => sendChange(server, target, { "X-Bench-Console": "drop" });
  for (let i = 0; i < 500; i++) await one();
  await fetch(`${server.url}/reset`, { method: "POST" });
  const session = await inspector();
  await session.call("Profiler.enable");
  await session.call("Profiler.setSamplingInterval", { interval: 50 });
  await session.call("Profiler.start");
  for (let i = 0; i < requests; i++) await one();
  profile = (await session.call<{ profile: Profile }>("Profiler.stop")).profile;
  session.close();
} finally {
  server.close();
}

const file = resolve(root, `.bench/${target}.cpuprofile`);
writeFileSync(file, JSON.stringify(profile));

// Module boundaries of the unminified bundle: esbuild starts each module with `// <path>`.
const marks: [number, string][] = [];
readFileSync(bundle, "utf8")
  .split("\n")
  .forEach((line, i) => {
    const m = /^\/\/ (node_modules\/(?:@[^/]+\/)?[^/]+|src\/\S+|bench\/\S+)/.exec(line);
    if (m) marks.push([i, m[1]]);
  });
const moduleOf = (line: number) => {
  let name = "?";
  for (const [start, module] of marks) {
    if (start > line) break;
    name = module;
  }
  return name;
};

const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const byModule = new Map<string, number>();
const byFunction = new Map<string, number>();
let busy = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const frame = nodes.get(profile.samples[i])?.callFrame;
  const us = (profile.timeDeltas[i + 1] ?? 0) / requests;
  if (!frame || frame.functionName === "(idle)") continue;
  busy += us;
  const module = frame.url ? moduleOf(frame.lineNumber) : "(runtime)";
  const fn = `${frame.functionName || "(anonymous)"} ${frame.url ? `${module}:${frame.lineNumber + 1}` : "(runtime)"}`;
  byModule.set(module, (byModule.get(module) ?? 0) + us);
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
}
const top = Number(args.top);
const table = (title: string, rows: Map<string, number>) => {
  console.log(`\n${title}`);
  for (const [name, us] of [...rows].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${us.toFixed(1).padStart(8)} µs  ${((100 * us) / busy).toFixed(1).padStart(5)} %  ${name}`);
  }
};
console.log(`${target}: ${requests} requests profiled, ${busy.toFixed(1)} µs busy per request (profiler on)`);
table("self time per request, by module ((runtime): native code and the runtime's own work)", byModule);
table("self time per request, by function", byFunction);
console.log(`\nprofile written to ${file}`);
