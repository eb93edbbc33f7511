/**
 * The startup half of `npm run bench`: this Worker's startup CPU over a bare Hono hello-world
 * Worker's (perf/hello.ts), measured the way `wrangler check startup` measures it
 * (wrangler's deploy-helpers `analyseBundle` and `summarizeStartupProfile`): the bundle as
 * `wrangler deploy --dry-run` builds it, behind an entry module whose first `fetch` does
 * `await import(<main module>)`; V8's sampling profiler (default interval, as wrangler
 * leaves it) runs from before that request until its answer is read; the figure is the
 * profile's active time, its sampled time less its idle samples.
 *
 * Each round runs what wrangler runs (its own miniflare, a fresh one per Worker, so each import
 * is a cold isolate's) for each Worker (this one, the startup floor of perf/startup-floor.ts,
 * the hello-world; `npm run bench:ab` passes its own) in rotating order
 * ({@link measureStartups}); a ratio is of two medians over the rounds (not of each round's pair: at V8's default 1 ms interval a
 * hello-world's import can end before the sampler takes a busy sample, an active time of 0).
 * As in wrangler, a busy sample carries the time since the sample before it: on a loaded
 * machine that gap is part of both figures, so each round also times the same import by the
 * process's CPU time ({@link cpuStartupUs}), which preemption does not inflate.
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { connect } from "node:net";
import { basename, dirname, join, relative, resolve } from "node:path";
import { unstable_readConfig } from "wrangler";
import { freePort, median, processCpuNs, workerdPath } from "./bench-http.ts";
import { devtoolsSession } from "./devtools.ts";

const root = resolve(import.meta.dirname, "..");

export interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  }[];
  samples?: number[];
  timeDeltas?: number[];
}

/** Active time of a profile in µs, as `wrangler check startup` reports it ("Active"). */
export function activeTimeUs(profile: CpuProfile): number {
  const names = new Map(profile.nodes.map((n) => [n.id, n.callFrame.functionName]));
  const samples = profile.samples ?? [];
  let active = 0;
  for (const [i, delta] of (profile.timeDeltas ?? []).entries()) {
    if (names.get(samples[i] ?? 0) !== "(idle)") active += delta;
  }
  return active;
}

export interface Built {
  /** The module wrangler names main (the entry's file name, `.js`). */
  main: string;
  /** Every module it uploads, with its workerd module kind. */
  modules: { name: string; path: string; kind: "esModule" | "text" | "data" | "wasm" }[];
}

/** Builds an entry exactly as `wrangler deploy` would (wrangler.toml's settings, minified). */
export function build(entry: string, outdir: string, minify = true, from = root): Built {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  execFileSync(
    resolve(root, "node_modules/.bin/wrangler"),
    [
      "deploy",
      resolve(from, entry),
      "--dry-run",
      `--minify=${minify}`,
      "--outdir",
      outdir,
      "--config",
      resolve(from, "wrangler.toml"),
    ],
    {
      cwd: root,
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    },
  );
  const files = readdirSync(outdir).filter((f) => !f.endsWith(".map") && f !== "README.md");
  const modules = files.map((name) => ({
    name,
    path: join(outdir, name),
    kind: /\.m?js$/.test(name)
      ? ("esModule" as const)
      : name.endsWith(".wasm")
        ? ("wasm" as const)
        : name.endsWith(".bin")
          ? ("data" as const)
          : ("text" as const),
  }));
  const main = `${basename(entry).replace(/\.[cm]?[jt]s$/, "")}.js`;
  if (!files.includes(main)) throw new Error(`startup: ${entry} built no ${main}`);
  return { main, modules };
}

/** wrangler's profiler entry module: its first request imports the Worker. */
const profilerEntry = (main: string) => `
async function startup() {
  await import(${JSON.stringify(main)});
}
export default {
  async fetch() {
    await startup();
    return new Response("ok");
  }
}
`;

/** The miniflare that wrangler itself runs (its own dependency, not the test pool's). */
const { Miniflare, convertV4MiniflareOptions } = createRequire(
  createRequire(import.meta.url).resolve("wrangler/package.json"),
)("miniflare") as typeof import("miniflare") & { convertV4MiniflareOptions(o: unknown): object };

/**
 * What `wrangler check startup` does for one bundle (analyseBundle): a miniflare with the
 * profiler entry and the bundle's modules, the profiler started over the inspector, one
 * request, the profile when its answer is read.
 */
export async function profileStartup(
  built: Built,
  compat: { date: string; flags: string[] },
): Promise<CpuProfile> {
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      name: "profiler",
      compatibilityDate: compat.date,
      compatibilityFlags: compat.flags,
      modulesRoot: "/",
      modules: [
        { type: "ESModule", path: crypto.randomUUID(), contents: profilerEntry(built.main) },
        ...built.modules.map((m) => ({
          type: { esModule: "ESModule", text: "Text", data: "Data", wasm: "CompiledWasm" }[m.kind],
          path: m.name,
          contents: readFileSync(m.path),
        })),
      ],
      inspectorPort: 0,
      handleStructuredLogs: () => undefined,
    }) as ConstructorParameters<typeof Miniflare>[0],
  );
  try {
    await mf.ready;
    const inspector = await mf.getInspectorURL();
    const s = await devtoolsSession(new URL("/core:user:profiler", inspector.href).href);
    await s.call("Profiler.enable");
    await s.call("Profiler.start");
    const res = await mf.dispatchFetch("https://example.com");
    const body = await res.text();
    if (body !== "ok") throw new Error(`startup: ${built.main} answered ${res.status} ${body.slice(0, 300)}`);
    const { profile } = await s.call<{ profile: CpuProfile }>("Profiler.stop");
    s.close();
    return profile;
  } finally {
    await mf.dispose();
  }
}

/**
 * The same import timed by CPU time instead of samples: one fresh `workerd serve` with the
 * profiler entry and the bundle, the process's CPU time (all threads, /proc schedstat) over
 * the first request, which imports the Worker, less that over a second one, which does not.
 * CPU time does not grow when the shared machine preempts the process; the sampler's
 * wall-clock gaps do.
 */
export async function cpuStartupUs(built: Built, compat: { date: string; flags: string[] }): Promise<number> {
  const dir = dirname(built.modules[0].path);
  const port = await freePort();
  const text = (value: string) => JSON.stringify(value);
  writeFileSync(join(dir, "cpu-entry.js"), profilerEntry(`./${built.main}`));
  const modules = [
    `(name = "cpu-entry.js", esModule = embed "cpu-entry.js")`,
    ...built.modules.map((m) => `(name = ${text(m.name)}, ${m.kind} = embed ${text(relative(dir, m.path))})`),
  ];
  const file = join(dir, "cpu.capnp");
  writeFileSync(
    file,
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "main", worker = .w)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
);
const w :Workerd.Worker = (
  modules = [${modules.join(", ")}],
  compatibilityDate = ${text(compat.date)},
  compatibilityFlags = [${compat.flags.map(text).join(", ")}],
);
`,
  );
  const child = spawn(workerdPath(), ["serve", file], { stdio: "ignore" });
  try {
    // Wait for the socket without a request: the first request must be the one that imports.
    for (let i = 0; ; i++) {
      const up = await new Promise<boolean>((done) => {
        const socket = connect(port, "127.0.0.1", () => {
          socket.destroy();
          done(true);
        });
        socket.on("error", () => done(false));
      });
      if (up) break;
      if (i > 200 || child.exitCode !== null) throw new Error("startup: workerd did not listen");
      await new Promise((r) => setTimeout(r, 30));
    }
    await new Promise((r) => setTimeout(r, 100));
    const pid = child.pid ?? 0;
    const request = async () => {
      const before = processCpuNs(pid);
      const body = await (await fetch(`http://127.0.0.1:${port}/`)).text();
      if (body !== "ok") throw new Error(`startup: ${built.main} answered ${body.slice(0, 300)}`);
      return processCpuNs(pid) - before;
    };
    const first = await request();
    const second = await request();
    return (first - second) / 1000;
  } finally {
    child.kill("SIGTERM");
  }
}

let config: ReturnType<typeof unstable_readConfig> | undefined;
/** wrangler.toml as wrangler reads it, read once. */
const wranglerConfig = () => (config ??= unstable_readConfig({ config: resolve(root, "wrangler.toml") }));

/**
 * Measures each built Worker's startup `rounds` times, both ways (wrangler's active time and
 * process CPU, in µs), the Workers in rotating order so that none is always first after
 * another; compatibility date and flags from wrangler.toml.
 */
export async function measureStartups<N extends string>(
  built: Record<N, Built>,
  rounds: number,
): Promise<{ active: Record<N, number[]>; cpu: Record<N, number[]> }> {
  const config = wranglerConfig();
  const compat = { date: config.compatibility_date ?? "", flags: config.compatibility_flags ?? [] };
  const names = Object.keys(built) as N[];
  const empty = () => Object.fromEntries(names.map((n) => [n, [] as number[]])) as Record<N, number[]>;
  const active = empty();
  const cpu = empty();
  for (let i = 0; i < rounds; i++) {
    for (const name of names.map((_, k) => names[(k + i) % names.length])) {
      active[name].push(activeTimeUs(await profileStartup(built[name], compat)));
      cpu[name].push(await cpuStartupUs(built[name], compat));
    }
  }
  return { active, cpu };
}

/**
 * Builds this Worker (src/index.ts, wrangler.toml's `main`), the startup floor
 * (perf/startup-floor.ts) and the hello-world and measures them over `rounds` rounds; returns
 * the samples in µs and the ratios of this Worker's medians to the hello-world's.
 */
export async function startupRounds(rounds: number): Promise<{
  app: number[];
  floor: number[];
  hello: number[];
  ratio: number;
  cpu: { app: number[]; floor: number[]; hello: number[]; ratio: number };
}> {
  const dir = resolve(root, ".bench/startup");
  const main = wranglerConfig().main ?? "src/index.ts";
  const { active, cpu } = await measureStartups(
    {
      app: build(main, join(dir, "app")),
      floor: build("perf/startup-floor.ts", join(dir, "floor")),
      hello: build("perf/hello.ts", join(dir, "hello")),
    },
    rounds,
  );
  return {
    ...active,
    ratio: median(active.app) / median(active.hello),
    cpu: { ...cpu, ratio: median(cpu.app) / median(cpu.hello) },
  };
}
