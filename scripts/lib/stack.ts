/**
 * What the end-to-end checks (`npm run e2e`, `npm run load`) share: free loopback ports, process
 * groups, `npm start` in sandbox mode on isolated state, and the token CLI as a subprocess.
 * Every child runs in its own process group (`detached`), so one signal to the group ends it and
 * whatever it started (wrangler, workerd).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { PROJECT_ROOT } from "./kv.ts";

/** What `npm start` prints last once the Worker answers `/healthz`. */
export const READY_LINE = "Ctrl-C stops everything.";

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** True while any process of the group led by `pid` is alive. */
export function groupAlive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Sends `signal` to the group led by `pid`, if any of it is still alive. */
export function killGroup(pid: number | undefined, signal: NodeJS.Signals = "SIGKILL"): void {
  if (pid === undefined || !groupAlive(pid)) return;
  try {
    process.kill(-pid, signal);
  } catch {
    // gone in between
  }
}

/** SIGTERM to the group, then SIGKILL if it is still alive after `graceMs`. */
export async function stopGroup(pid: number | undefined, graceMs = 10_000): Promise<void> {
  if (pid === undefined) return;
  killGroup(pid, "SIGTERM");
  for (let waited = 0; waited < graceMs && groupAlive(pid); waited += 100) {
    await new Promise((r) => setTimeout(r, 100));
  }
  killGroup(pid, "SIGKILL");
}

/** `npm start` running in sandbox mode. */
export interface DevStack {
  /** The Worker, `http://127.0.0.1:<port>`. */
  origin: string;
  /** The local Village sandbox, `http://127.0.0.1:<sandbox port>`. */
  sandbox: string;
  child: ChildProcess;
  /** Everything `npm start` printed (stdout and stderr), in arrival order. */
  output: string[];
  /** Resolves with the output so far once {@link READY_LINE} is printed; rejects if it exits first. */
  ready: Promise<string>;
  /** Resolves with the exit code when `npm start` exits. */
  exited: Promise<number | null>;
}

/**
 * Starts `npm start -- --port P --sandbox-port S --persist-to <state> --sandbox` in its own process
 * group: the developer's `.wrangler/state` and `.dev.vars` credentials are never used.
 */
export function startDevStack(opts: { port: number; sandboxPort: number; state: string }): DevStack {
  const args = ["start", "--", "--port", `${opts.port}`, "--sandbox-port", `${opts.sandboxPort}`];
  args.push("--persist-to", opts.state, "--sandbox");
  const child = spawn("npm", args, { cwd: PROJECT_ROOT, detached: true, stdio: ["ignore", "pipe", "pipe"] });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let isReady = false;
  const ready = new Promise<string>((resolve, reject) => {
    let seen = ""; // only until ready: later output can be large
    const onData = (chunk: Buffer) => {
      const text = chunk.toString("utf8");
      output.push(text);
      if (isReady) return;
      seen += text;
      if (seen.includes(READY_LINE)) {
        isReady = true;
        resolve(seen);
      }
    };
    child.stdout?.on("data", onData);
    child.stderr?.on("data", onData);
    void exited.then((code) => reject(new Error(`npm start exited early with code ${code}`)));
  });
  ready.catch(() => {}); // callers await it; an early exit must not also be an unhandled rejection
  return {
    origin: `http://127.0.0.1:${opts.port}`,
    sandbox: `http://127.0.0.1:${opts.sandboxPort}`,
    child,
    output,
    ready,
    exited,
  };
}

/** Groups of running {@link tokenCli} calls, so that a hard stop can end them too. */
export const runningCli = new Set<number>();

/**
 * `npm run token -- <args> --persist-to <state>`, in its own process group, killed after
 * `timeoutMs`. Never rejects: a failure to start is exit code null with the error in stderr.
 */
export function tokenCli(
  args: string[],
  state: string,
  timeoutMs = 60_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn("npm", ["run", "token", "--", ...args, "--persist-to", state], {
      cwd: PROJECT_ROOT,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    const pid = child.pid;
    if (pid !== undefined) runningCli.add(pid);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString("utf8");
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString("utf8");
    });
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${timeoutMs / 1000} s)`;
      killGroup(pid);
    }, timeoutMs);
    let finished = false;
    const done = (code: number | null) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      killGroup(pid); // anything it left behind
      if (pid !== undefined) runningCli.delete(pid);
      resolve({ code, stdout, stderr });
    };
    child.once("error", (err) => {
      stderr += String(err);
      done(null);
    });
    child.once("close", done);
  });
}

/** The JSON object a `--json` CLI command printed after `npm run`'s own header lines. */
export function cliJson<T>(stdout: string): T {
  // A line of its own that starts with `{`; npm's header (`> village-edge@… token`) never does.
  const start = stdout.startsWith("{") ? 0 : stdout.indexOf("\n{") + 1;
  if (start === 0 && !stdout.startsWith("{")) throw new Error("no JSON object in the output");
  return JSON.parse(stdout.slice(start)) as T;
}
