/**
 * `npm run bench:profile [-- --target full|floor|bare] [--requests N]`: where the CPU time of
 * one target of `npm run bench` goes. The bench Worker (bench/worker.ts), built unminified so
 * that functions keep their names, runs under `workerd serve` with its V8 inspector on
 * loopback; after a warm-up, N requests are sent over HTTP while the V8 sampling profiler
 * runs. Prints the busy time per request by source module and by function (self time), and
 * writes the profile to `.bench/<target>.cpuprofile` (open it in Chrome DevTools).
 *
 * The profiler slows everything down (about 1.5x here) and console lines are dropped (with an
 * inspector attached each one is also sent to it), so read shares, not absolute times: the
 * figures of record come from `npm run bench`.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { unstable_readConfig } from "wrangler";
import { closeConnections, freePort, send, startUpstream, startWorkerd } from "./lib/bench-http.ts";

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
const target = args.target ?? "full";
if (!["full", "floor", "bare"].includes(target)) throw new Error("--target must be full, floor or bare");
const requests = Number(args.requests);
if (!Number.isInteger(requests) || requests < 100 || requests > 100_000)
  throw new Error("--requests: 100..100000");

const root = resolve(import.meta.dirname, "..");
const outdir = resolve(root, ".bench/profile-build");
mkdirSync(outdir, { recursive: true });
execFileSync(
  resolve(root, "node_modules/.bin/wrangler"),
  [
    "deploy",
    "bench/worker.ts",
    "--dry-run",
    "--minify=false",
    "--outdir",
    outdir,
    "--config",
    "wrangler.toml",
  ],
  {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  },
);
const bundle = resolve(outdir, "worker.js");

const config = unstable_readConfig({ config: resolve(root, "wrangler.toml") });
const vars = Object.fromEntries(
  Object.entries(config.vars ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
);
const upstream = await startUpstream();
const inspectorPort = await freePort();
const workerd = await startWorkerd({
  dir: resolve(root, ".bench"),
  bundle,
  compatibilityDate: config.compatibility_date ?? "",
  compatibilityFlags: config.compatibility_flags ?? [],
  inspectorAddr: `127.0.0.1:${inspectorPort}`,
  vars: {
    ...vars,
    VILLAGE_API_BASE: upstream.url,
    VILLAGE_NETWORK_ID: "bench-network",
    VILLAGE_API_KEY: `bench-key-${crypto.randomUUID()}`,
    BENCH_RATE_LIMITERS: (config.ratelimits ?? []).map((r: { name: string }) => r.name).join(","),
  },
});

/** One DevTools-protocol session with the Worker's isolate. */
async function inspector() {
  const list = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as {
    webSocketDebuggerUrl: string;
  }[];
  const ws = new WebSocket(list[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => {
    ws.addEventListener("open", resolve);
    ws.addEventListener("error", reject);
  });
  let id = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  ws.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) waiting.get(message.id)?.(message.result);
  });
  return {
    call: <T>(method: string, params: object = {}) =>
      new Promise<T>((resolve) => {
        id += 1;
        waiting.set(id, resolve as (result: unknown) => void);
        ws.send(JSON.stringify({ id, method, params }));
      }),
    close: () => ws.close(),
  };
}

const BODY = JSON.stringify({ first_name: "Ada", last_name: "Lovelace", phone_number: "+44 20 7123 4567" });
let profile: Profile;
try {
  const secret = await (await fetch(`${workerd.url}/secret`)).text();
  const one = async () => {
    const status = await send(`${workerd.url}/users/ada.lovelace%40example.com`, {
      method: "PATCH",
      headers: {
        "X-Bench-Target": target,
        "X-Bench-Console": "drop",
        Authorization: `Bearer ${secret}`,
        "Content-Type": "application/json",
        "Content-Length": String(Buffer.byteLength(BODY)),
      },
      body: BODY,
    });
    if (status !== (target === "bare" ? 201 : 202)) throw new Error(`${target}: status ${status}`);
  };
  for (let i = 0; i < 500; i++) await one();
  await fetch(`${workerd.url}/reset`, { method: "POST" });
  const session = await inspector();
  await session.call("Profiler.enable");
  await session.call("Profiler.setSamplingInterval", { interval: 50 });
  await session.call("Profiler.start");
  for (let i = 0; i < requests; i++) await one();
  profile = (await session.call<{ profile: Profile }>("Profiler.stop")).profile;
  session.close();
} finally {
  closeConnections();
  workerd.close();
  upstream.close();
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
