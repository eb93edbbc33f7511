/**
 * The local audit signing key of `npm start`: `local:<base64 of 32 random bytes>`, made once per
 * local state folder and kept beside it (`<state>/audit-signing-key`, mode 0600), so the trail
 * of that state stays verifiable across restarts. Real keys never live here: a deployed Worker
 * has AUDIT_SIGNING_KEY as a secret, and `.dev.vars` may set one that then wins.
 */
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { persistRoot } from "./kv.ts";

/** Where the local key of this state folder lives. */
export const localKeyPath = (persistTo?: string): string =>
  path.join(persistRoot(persistTo), "audit-signing-key");

/** The local key, if `npm start` made one for this state folder. */
export function readLocalKey(persistTo?: string): string | undefined {
  const file = localKeyPath(persistTo);
  return existsSync(file) ? readFileSync(file, "utf8").trim() : undefined;
}

/** The local key, made (and stored, 0600) on first use. */
export function ensureLocalKey(persistTo?: string): string {
  const found = readLocalKey(persistTo);
  if (found) return found;
  const key = `local:${randomBytes(32).toString("base64")}`;
  const file = localKeyPath(persistTo);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  return key;
}
