/**
 * The demo token `npm start` mints in sandbox mode, kept to one: each start revokes the previous
 * one (in both modes, so a demo token never works against the real Village) before minting anew.
 * Its public id is remembered in `<local state>/village-edge-demo-token.json`.
 */
import { readFile, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { createToken, revokeToken } from "../../src/auth/tokens.ts";
import { openLocalKv, persistRoot } from "./kv.ts";

const FILE = "village-edge-demo-token.json";

/** Revokes the previous demo token, if any; mints a new one when `mint` is set. */
export async function rotateDemoToken(opts: {
  mint: boolean;
  persistTo?: string;
}): Promise<{ id: string; secret: string; revokedId?: string } | { revokedId?: string }> {
  const file = path.join(persistRoot(opts.persistTo), FILE);
  let previous: string | undefined;
  try {
    const saved = JSON.parse(await readFile(file, "utf8")) as { id?: unknown };
    if (typeof saved.id === "string") previous = saved.id;
  } catch {
    // no previous demo token (or an unreadable file, replaced below)
  }
  const { kv, dispose } = await openLocalKv("TOKENS", opts.persistTo);
  try {
    const revokedId = previous && (await revokeToken(kv, previous)) ? previous : undefined;
    if (!opts.mint) {
      await rm(file, { force: true });
      return { revokedId };
    }
    const { secret, record } = await createToken(kv, { name: "demo", scopes: ["users:write"] });
    await writeFile(file, `${JSON.stringify({ id: record.id, created_at: record.created_at })}\n`);
    return { id: record.id, secret, revokedId };
  } finally {
    await dispose();
  }
}
