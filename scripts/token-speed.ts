/**
 * `npm run token:speed`: how fast the token CLI is with `npm start` running (it then uses the
 * token API) against one `npx wrangler kv key list --binding TOKENS --local` (what every token
 * command cost when it went to KV itself). Starts `npm start` in sandbox mode on free ports and a
 * fresh state folder, times each command `--runs` times (default 5) one after the other, and
 * prints the medians and their ratio; the goal is a ratio of at most 0.2 (exit 1 above it).
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { argValue } from "./lib/cli.ts";
import { PROJECT_ROOT } from "./lib/kv.ts";
import { freePort, killGroup, startDevStack } from "./lib/stack.ts";

const GOAL = 0.2;
const runs = Number(argValue("runs") ?? "5");
if (!Number.isInteger(runs) || runs < 1 || runs > 50) {
  console.error("token:speed: --runs must be 1 to 50");
  process.exit(2);
}

const state = mkdtempSync(path.join(tmpdir(), "village-edge-speed-"));
const stack = startDevStack({ port: await freePort(), sandboxPort: await freePort(), state });
const finish = (code: number): never => {
  killGroup(stack.child.pid);
  rmSync(state, { recursive: true, force: true });
  process.exit(code);
};
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => finish(1));

/** Runs a command to completion and returns its wall time in ms; fails loudly on a non-zero exit. */
function timed(cmd: string, args: string[]): number {
  const start = performance.now();
  const r = spawnSync(cmd, args, {
    cwd: PROJECT_ROOT,
    encoding: "utf8",
    timeout: 120_000,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
  });
  const ms = performance.now() - start;
  if (r.status !== 0) {
    console.error(`token:speed: ${cmd} ${args.join(" ")} exited ${r.status}:\n${r.stderr}`);
    finish(1);
  }
  return ms;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

try {
  await stack.ready;
} catch (err) {
  console.error(
    `token:speed: npm start did not come up: ${String(err)}\n${stack.output.join("").slice(-2000)}`,
  );
  finish(1);
}

const cli = ["run", "-s", "token", "--", "list", "--persist-to", state];
const kv = ["wrangler", "kv", "key", "list", "--binding", "TOKENS", "--local", "--persist-to", state];
// The CLI must have gone through the API: its output names the server, not the local state.
const check = spawnSync("npm", cli, { cwd: PROJECT_ROOT, encoding: "utf8" });
if (!check.stdout.includes(stack.origin)) {
  console.error(`token:speed: the token CLI did not use ${stack.origin}:\n${check.stdout}${check.stderr}`);
  finish(1);
}
const api: number[] = [];
const direct: number[] = [];
for (let i = 0; i < runs; i++) {
  api.push(timed("npm", cli));
  direct.push(timed("npx", kv));
}
const a = median(api);
const d = median(direct);
const ratio = a / d;
const fmt = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(", ");
console.log(`npm run -s token -- list (npm start running):     median ${a.toFixed(0)} ms  [${fmt(api)}]`);
console.log(`npx wrangler kv key list --binding TOKENS --local: median ${d.toFixed(0)} ms  [${fmt(direct)}]`);
console.log(`ratio: ${ratio.toFixed(3)} (goal <= ${GOAL}; ${runs} run(s) each)`);
finish(ratio <= GOAL ? 0 : 1);
