/**
 * The HTTP half of `npm run bench` and all of `npm run bench:profile`: the bench Worker built
 * like a deploy and served by workerd itself (`workerd serve`,
 * no miniflare proxies in front), a local upstream that answers like Village, and real HTTP
 * requests from this process. workerd's CPU time per request then includes what the runtime
 * does for every request (HTTP parsing, the Request object, the response, the subrequest), as
 * a deployed Worker's CPU time does, on top of the handler's own work. Loopback only.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Agent, createServer, request } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { basename, join, relative, resolve } from "node:path";
import { unstable_readConfig } from "wrangler";

const root = resolve(import.meta.dirname, "..");

/**
 * Builds `perf/worker.ts` as `npm run deploy` builds the Worker (same wrangler.toml), into an
 * emptied `outdir`; unminified when asked (profiles then name functions). Returns the bundle.
 */
export function buildBenchWorker(
  outdir: string,
  { minify, entry = resolve(root, "perf/worker.ts") }: { minify: boolean; entry?: string },
): string {
  rmSync(outdir, { recursive: true, force: true });
  mkdirSync(outdir, { recursive: true });
  execFileSync(
    resolve(root, "node_modules/.bin/wrangler"),
    ["deploy", entry, "--dry-run", `--minify=${minify}`, "--outdir", outdir, "--config", "wrangler.toml"],
    {
      cwd: root,
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
    },
  );
  return resolve(outdir, `${basename(entry).replace(/\.ts$/, "")}.js`);
}

/** Nanoseconds of CPU all threads of a process have run (Linux schedstat). */
export function processCpuNs(pid: number): number {
  let total = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      total += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended meanwhile
    }
  }
  return total;
}

/** A stand-in for Village on loopback: reads the body, answers 201 with a small JSON body. */
async function startUpstream(): Promise<{ url: string; close(): void }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.writeHead(201, { "content-type": "application/json" });
      res.end('{"status":"queued"}');
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => server.close() };
}

const text = (value: string) => JSON.stringify(value);

/** The workerd binary wrangler runs (its own dependency). */
export const workerdPath = (): string =>
  (
    createRequire(createRequire(import.meta.url).resolve("wrangler/package.json"))("workerd") as {
      default: string;
    }
  ).default;

/** Starts workerd on loopback with the bundle and text bindings; resolves once it listens. */
async function startWorkerd(options: {
  dir: string;
  bundle: string;
  compatibilityDate: string;
  compatibilityFlags: string[];
  vars: Record<string, string>;
  /** V8 flags, e.g. `--perf-basic-prof` to let `perf` name JIT-compiled functions. */
  v8Flags?: string[];
  /** `host:port` for workerd's V8 inspector (CPU profiles over the DevTools protocol). */
  inspectorAddr?: string;
}): Promise<{ url: string; pid: number; close(): void }> {
  const workerd = workerdPath();
  const port = await freePort();
  const bindings = Object.entries(options.vars)
    .map(([name, value]) => `(name = ${text(name)}, text = ${text(value)})`)
    .join(", ");
  const config = `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .bench),
    (name = "loopback", network = (allow = ["local", "private", "public"])),
  ],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "main")],
  v8Flags = [${(options.v8Flags ?? []).map(text).join(", ")}],
);
const bench :Workerd.Worker = (
  modules = [(name = "index.js", esModule = embed ${text(relative(options.dir, options.bundle))})],
  compatibilityDate = ${text(options.compatibilityDate)},
  compatibilityFlags = [${options.compatibilityFlags.map(text).join(", ")}],
  bindings = [${bindings}],
  globalOutbound = "loopback",
);
`;
  const file = join(options.dir, "bench.capnp");
  writeFileSync(file, config);
  const child: ChildProcess = spawn(
    workerd,
    ["serve", file, ...(options.inspectorAddr ? [`--inspector-addr=${options.inspectorAddr}`] : [])],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (chunk) => {
    stderr += String(chunk);
  });
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    if (child.exitCode !== null) throw new Error(`workerd exited: ${stderr}`);
    try {
      await fetch(`${url}/secret`);
      break;
    } catch {
      if (i > 200) throw new Error(`workerd did not start: ${stderr}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { url, pid: child.pid ?? 0, close: () => child.kill("SIGTERM") };
}

/** The median of some samples (the mean of the middle two for an even count). */
export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const agent = new Agent({ keepAlive: true, maxSockets: 1 });

/** Sends one request over a kept-alive connection; resolves with the status once the body is read. */
function send(
  url: string,
  init: { method: string; headers: Record<string, string>; body: string },
): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: init.method, headers: init.headers, agent }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

/** Closes the kept-alive connections. */
const closeConnections = () => agent.destroy();

/** The bench Worker served over HTTP, with its upstream and the secret of its one token. */
export interface BenchServer {
  url: string;
  pid: number;
  secret: string;
  close(): void;
}

/**
 * Serves a bench bundle under `workerd serve` with wrangler.toml's vars, a local upstream in
 * Village's place, a throwaway Village key and always-allowing rate limiters.
 */
export async function startBenchServer(options: {
  bundle: string;
  inspectorAddr?: string;
}): Promise<BenchServer> {
  const config = unstable_readConfig({ config: resolve(root, "wrangler.toml") });
  const vars = Object.fromEntries(
    Object.entries(config.vars ?? {}).map(([k, v]) => [k, typeof v === "string" ? v : JSON.stringify(v)]),
  );
  const upstream = await startUpstream();
  const workerd = await startWorkerd({
    dir: resolve(root, ".bench"),
    bundle: options.bundle,
    compatibilityDate: config.compatibility_date ?? "",
    compatibilityFlags: config.compatibility_flags ?? [],
    inspectorAddr: options.inspectorAddr,
    vars: {
      ...vars,
      VILLAGE_API_BASE: upstream.url,
      VILLAGE_NETWORK_ID: "bench-network",
      VILLAGE_API_KEY: `bench-key-${crypto.randomUUID()}`,
      AUDIT_SIGNING_KEY: `bench:${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`,
      BENCH_RATE_LIMITERS: (config.ratelimits ?? []).map((r: { name: string }) => r.name).join(","),
    },
  });
  const close = () => {
    closeConnections();
    workerd.close();
    upstream.close();
  };
  try {
    const secret = await (await fetch(`${workerd.url}/secret`)).text();
    return { url: workerd.url, pid: workerd.pid, secret, close };
  } catch (err) {
    close();
    throw err;
  }
}

/** The targets of perf/worker.ts over HTTP (`X-Bench-Target`); bench:ab adds `base-full`. */
export type BenchTarget = "full" | "floor" | "bare" | "base-full";

const CHANGE = JSON.stringify({ first_name: "Ada", last_name: "Lovelace", phone_number: "+44 20 7123 4567" });

/**
 * Sends the bench's change (all three fields) to one target and checks its status: 201 from
 * the bare pass-through (Village's own), 202 from the others.
 */
export async function sendChange(
  server: BenchServer,
  target: BenchTarget,
  headers: Record<string, string> = {},
): Promise<void> {
  const status = await send(`${server.url}/users/ada.lovelace%40example.com`, {
    method: "PATCH",
    headers: {
      ...headers,
      "X-Bench-Target": target,
      Authorization: `Bearer ${server.secret}`,
      "Content-Type": "application/json",
      "Content-Length": String(Buffer.byteLength(CHANGE)),
    },
    body: CHANGE,
  });
  if (status !== (target === "bare" ? 201 : 202)) throw new Error(`${target}: status ${status}`);
}
