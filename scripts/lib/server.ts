/**
 * Which running village-edge a CLI talks to. `npm start` (scripts/dev.ts) writes
 * `<project>/.wrangler/dev-server.json` (mode 0600) once the Worker answers and removes it on exit;
 * a CLI finds the server in this order: its `--url` flag, the `VILLAGE_EDGE_URL` environment
 * variable, then that state file if the process that wrote it is still alive.
 */
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/**
 * The state file `npm start` writes. `VILLAGE_EDGE_STATE_FILE` moves it (scripts/e2e-dev.ts does,
 * so that its own `npm start` leaves a developer's running one alone).
 */
export const STATE_FILE = process.env.VILLAGE_EDGE_STATE_FILE
  ? path.resolve(process.env.VILLAGE_EDGE_STATE_FILE)
  : path.join(fileURLToPath(new URL("../../", import.meta.url)), ".wrangler", "dev-server.json");

/** What the state file holds. */
export interface ServerState {
  url: string;
  pid: number;
  started_at: string;
  /** A short-lived `tokens:admin` token that `npm start` mints (issue 13). */
  admin_token?: string;
}

/** A server to talk to, and where its URL came from. */
export interface FoundServer {
  url: string;
  source: "flag" | "env" | "state-file";
  adminToken?: string;
}

const trim = (url: string) => url.replace(/\/+$/, "");

/** True when a process with this pid exists (signal 0 checks without sending anything). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The state file's contents when it is well formed, else undefined. */
export function readState(file = STATE_FILE): ServerState | undefined {
  try {
    const state = JSON.parse(readFileSync(file, "utf8")) as Partial<ServerState>;
    if (typeof state.url !== "string" || !Number.isInteger(state.pid)) return undefined;
    return state as ServerState;
  } catch {
    return undefined;
  }
}

/** `--url`, then `VILLAGE_EDGE_URL`, then a live `npm start`'s state file; undefined when none. */
export function findServer(flagUrl?: string, file = STATE_FILE): FoundServer | undefined {
  if (flagUrl) return { url: trim(flagUrl), source: "flag" };
  const env = process.env.VILLAGE_EDGE_URL?.trim();
  if (env) return { url: trim(env), source: "env" };
  const state = readState(file);
  if (!state || !alive(state.pid)) return undefined;
  return {
    url: trim(state.url),
    source: "state-file",
    ...(typeof state.admin_token === "string" ? { adminToken: state.admin_token } : {}),
  };
}

/** Writes the state file (mode 0600) for this process. */
export function writeState(state: ServerState, file = STATE_FILE): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** Removes the state file if it still holds this pid (a newer `npm start` may have replaced it). */
export function removeState(pid = process.pid, file = STATE_FILE): void {
  if (readState(file)?.pid === pid) rmSync(file, { force: true });
}

/** The sentence a CLI prints when no server is found. */
export const NO_SERVER =
  "no village-edge server found: start one with `npm start` (any --port), or give --url URL or set VILLAGE_EDGE_URL";
