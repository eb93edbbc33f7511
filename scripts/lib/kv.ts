/**
 * KV access for the Node-side tools (token CLI, `npm start`), shaped as `KvLike` from src/auth/tokens.ts.
 * - {@link openLocalKv}: wrangler's own local state (the one `wrangler dev` reads), through
 *   `getPlatformProxy`, so one workerd start serves every operation of a command.
 * - {@link wranglerKv}: `wrangler kv key get|put|delete|list` subprocesses, one per operation;
 *   used for `--remote` (Cloudflare's API, with the operator's wrangler login).
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { KvLike } from "../../src/auth/tokens.ts";

/** The project root (the folder holding wrangler.toml). */
export const PROJECT_ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const WRANGLER_CONFIG = path.join(PROJECT_ROOT, "wrangler.toml");

/**
 * Wrangler's local persistence folder: `--persist-to` resolved against the working directory (as
 * wrangler does), else `.wrangler/state` beside wrangler.toml (wrangler's default for `wrangler dev`).
 * Wrangler keeps its data in `<this>/v3`.
 */
export function persistRoot(persistTo?: string): string {
  return persistTo ? path.resolve(process.cwd(), persistTo) : path.join(PROJECT_ROOT, ".wrangler", "state");
}

/** The `wrangler` CLI entry point of this project's own install (no npx, no global wrangler). */
export function wranglerBin(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve("wrangler/package.json")), "bin", "wrangler.js");
}

/** A KV binding of the local state, open until `dispose()`. */
export interface OpenKv {
  kv: KvLike;
  dispose(): Promise<void>;
}

/** The TOKENS and AUDIT bindings of the local state and the Worker's [vars], open until `dispose()`. */
export interface OpenStores {
  tokens: KvLike;
  audit: KvLike;
  vars: Record<string, unknown>;
  dispose(): Promise<void>;
}

/**
 * Opens the KV bindings of wrangler's local state with `getPlatformProxy` (one workerd for the
 * whole command). Remote bindings are off: nothing leaves the machine.
 */
export async function openLocalStores(persistTo?: string): Promise<OpenStores> {
  // getPlatformProxy reads .dev.vars like `wrangler dev` and would warn about the missing secret;
  // a token command has nothing to do with secrets, so only errors are shown while it starts.
  const level = process.env.WRANGLER_LOG;
  process.env.WRANGLER_LOG = "error";
  // Offline, miniflare's look-up of Request.cf data fails with a stack trace: use its fallback.
  process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
  const { getPlatformProxy } = await import("wrangler");
  let proxy: Awaited<ReturnType<typeof getPlatformProxy<Record<string, unknown>>>>;
  try {
    proxy = await getPlatformProxy<Record<string, unknown>>({
      configPath: WRANGLER_CONFIG,
      persist: { path: path.join(persistRoot(persistTo), "v3") },
      remoteBindings: false,
    });
  } finally {
    if (level === undefined) delete process.env.WRANGLER_LOG;
    else process.env.WRANGLER_LOG = level;
  }
  const tokens = proxy.env.TOKENS as KvLike | undefined;
  const audit = proxy.env.AUDIT as KvLike | undefined;
  if (!tokens || !audit) {
    await proxy.dispose();
    throw new Error("wrangler.toml needs the KV bindings TOKENS and AUDIT");
  }
  return { tokens, audit, vars: proxy.env, dispose: () => proxy.dispose() };
}

/** Opens one KV binding (TOKENS or AUDIT) of wrangler's local state; see {@link openLocalStores}. */
export async function openLocalKv(binding: "TOKENS" | "AUDIT", persistTo?: string): Promise<OpenKv> {
  const stores = await openLocalStores(persistTo);
  return { kv: binding === "TOKENS" ? stores.tokens : stores.audit, dispose: stores.dispose };
}

/** The Worker's [vars] from wrangler.toml (for the remote direct path, which has no proxy). */
export async function configuredVars(): Promise<Record<string, unknown>> {
  const { unstable_readConfig } = await import("wrangler");
  return unstable_readConfig({ config: WRANGLER_CONFIG }, { hideWarnings: true }).vars;
}

/** Where {@link wranglerKv} points: Cloudflare, or (for checking this adapter) a local folder. */
export type WranglerTarget = { remote: true } | { remote: false; persistTo: string };

export interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function runWrangler(args: string[]): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [wranglerBin(), ...args], {
      cwd: PROJECT_ROOT,
      stdio: ["ignore", "pipe", "pipe"],
      // "log" level: `kv key list` and `get --text` print their results as log lines.
      env: { ...process.env, WRANGLER_LOG: "log", WRANGLER_SEND_METRICS: "false", NO_COLOR: "1" },
    });
    const out: Buffer[] = [];
    let err = "";
    child.stdout.on("data", (c: Buffer) => out.push(c));
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString("utf8");
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
  });
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: strips wrangler's terminal colours
const ANSI = /\u001b\[[0-9;]*m/g;

/**
 * Why a wrangler KV command failed, in words, without what it was given: wrangler echoes the
 * command (a token record, its hash included), so only recognised causes and wrangler's own
 * error lines, with every argument and anything hash-like cut out, are shown.
 */
export function failed(op: string, r: RunResult, args: string[] = []): Error {
  const text = `${r.stderr}\n${r.stdout.toString("utf8")}`.replace(ANSI, "");
  const hints: string[] = [];
  if (
    /not (logged in|authenticated)|CLOUDFLARE_API_TOKEN|wrangler login|Authentication error|\[code: 10000\]/i.test(
      text,
    )
  ) {
    hints.push(
      "wrangler is not logged in: run `npx wrangler login`, or set CLOUDFLARE_API_TOKEN (and CLOUDFLARE_ACCOUNT_ID).",
    );
  }
  if (/namespace.*(not found|not exist)|\[code: 10013\]|\[code: 10041\]/i.test(text)) {
    hints.push("the KV namespace id in wrangler.toml does not exist in this account (see README, Deploy).");
  }
  let errors = text
    .split("\n")
    .filter((line) => /✘|\[ERROR\]|error/i.test(line))
    .map((line) => line.trim());
  for (const arg of args) if (arg.length >= 8) errors = errors.map((l) => l.split(arg).join("[…]"));
  errors = errors.map((l) => l.replace(/[0-9a-f]{32,}/gi, "[…]").replace(/\{.*\}/g, "[…]"));
  const detail = [...hints, ...errors.slice(0, 4)].join("\n  ") || "no error message";
  return new Error(`wrangler kv key ${op} failed (exit ${r.code}):\n  ${detail}`);
}

/** Placeholder namespace ids like the ones wrangler.toml ships with (`000…01`). */
const PLACEHOLDER_ID = /^0{16,}\d*$/;

/** Refuses `--remote` while wrangler.toml still holds a placeholder id for this binding. */
export async function checkRemoteBinding(binding: string): Promise<void> {
  const { unstable_readConfig } = await import("wrangler");
  const config = unstable_readConfig({ config: WRANGLER_CONFIG }, { hideWarnings: true });
  const ns = config.kv_namespaces.find((k: { binding: string; id?: string }) => k.binding === binding);
  if (!ns) throw new Error(`wrangler.toml has no KV binding named ${binding}`);
  if (ns.id && PLACEHOLDER_ID.test(ns.id)) {
    throw new Error(
      `wrangler.toml's ${binding} namespace id is still the placeholder ${ns.id}: create the namespace with \`npx wrangler kv namespace create ${binding}\` and paste its id into wrangler.toml`,
    );
  }
}

/**
 * `KvLike` over `wrangler kv key …` subprocesses. Values travel as arguments: they are token
 * records (names, scopes, hashes), never a token secret.
 */
export function wranglerKv(binding: string, target: WranglerTarget): KvLike {
  const where = target.remote ? ["--remote"] : ["--local", "--persist-to", target.persistTo];
  const common = ["--binding", binding, ...where];
  return {
    async get(key) {
      const r = await runWrangler(["kv", "key", "get", key, ...common]);
      // Remote: a missing key is an API 404 error. Local: wrangler prints this line instead.
      if (r.code !== 0) {
        if (/ - 404: /.test(r.stderr)) return null;
        throw failed("get", r, [key]);
      }
      const text = r.stdout.toString("utf8");
      if (!target.remote && text === "Value not found\n") return null;
      return text;
    },
    async put(key, value, options = {}) {
      const args = ["kv", "key", "put", key, value, ...common];
      if (options.metadata !== undefined) args.push("--metadata", JSON.stringify(options.metadata));
      if (options.expiration !== undefined) args.push("--expiration", String(options.expiration));
      const r = await runWrangler(args);
      if (r.code !== 0) throw failed("put", r, args);
    },
    async delete(key) {
      const r = await runWrangler(["kv", "key", "delete", key, ...common]);
      if (r.code !== 0) throw failed("delete", r, [key]);
    },
    async list({ prefix }) {
      // `wrangler kv key list` follows the cursor itself and prints one JSON array.
      const r = await runWrangler(["kv", "key", "list", "--prefix", prefix, ...common]);
      if (r.code !== 0) throw failed("list", r);
      const text = r.stdout.toString("utf8");
      const start = text.indexOf("[");
      let keys: unknown;
      try {
        keys = JSON.parse(text.slice(start));
      } catch {
        throw failed("list (unreadable output)", r);
      }
      if (start < 0 || !Array.isArray(keys)) throw failed("list (unreadable output)", r);
      return { keys: keys as { name: string; metadata?: unknown }[], list_complete: true };
    },
  };
}
