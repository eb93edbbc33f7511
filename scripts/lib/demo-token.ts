/**
 * The tokens `npm start` mints, kept to one of each: each start revokes the previous ones before
 * minting anew. The demo token (`users:write`, sandbox mode only, so a demo token never works
 * against the real Village) and the local admin token (`tokens:admin`, 12 h, both modes): the
 * token CLI reads it from the state file (scripts/lib/server.ts) to use the local token API.
 * Both are made and revoked through the token CLI's direct path, so each creation and revocation
 * is in the audit trail like any other token's.
 * Their public ids are remembered in `<local state>/village-edge-demo-token.json`.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { openLocalStores, persistRoot } from "./kv.ts";
import { directBackend } from "./token-direct.ts";

const FILE = "village-edge-demo-token.json";
/** The local admin token's lifetime. */
const ADMIN_LIFETIME_MS = 12 * 3_600_000;

/** A minted token: its public id and secret. */
export interface Minted {
  id: string;
  secret: string;
}

/** Revokes the previous demo and admin tokens, if any; mints a demo token when `mint` is set, and an admin token. */
export async function rotateDemoToken(opts: {
  mint: boolean;
  persistTo?: string;
}): Promise<{ demo?: Minted; admin: Minted; revokedId?: string }> {
  const file = path.join(persistRoot(opts.persistTo), FILE);
  let saved: { id?: unknown; admin_id?: unknown } = {};
  try {
    saved = JSON.parse(await readFile(file, "utf8")) as typeof saved;
  } catch {
    // no previous tokens (or an unreadable file, replaced below)
  }
  const stores = await openLocalStores(opts.persistTo);
  try {
    const backend = await directBackend({ remote: false, persistTo: opts.persistTo, stores });
    const previous = typeof saved.id === "string" ? saved.id : undefined;
    const revokedId = previous && (await backend.revoke(previous)) ? previous : undefined;
    if (typeof saved.admin_id === "string") await backend.revoke(saved.admin_id);
    const made = await backend.create({
      name: "npm start: local token API",
      scopes: ["tokens:admin"],
      expiresAt: new Date(Date.now() + ADMIN_LIFETIME_MS),
    });
    const admin = { id: made.record.id, secret: made.secret };
    let demo: Minted | undefined;
    if (opts.mint) {
      const { secret, record } = await backend.create({ name: "demo", scopes: ["users:write"] });
      demo = { id: record.id, secret };
    }
    await rm(file, { force: true });
    await writeFile(file, `${JSON.stringify({ id: demo?.id, admin_id: admin.id })}\n`, { mode: 0o600 });
    return { demo, admin, revokedId };
  } finally {
    await stores.dispose();
  }
}
