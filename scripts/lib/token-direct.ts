/**
 * The token CLI's direct KV path: the TOKENS and AUDIT namespaces themselves (local state via
 * `getPlatformProxy`, or Cloudflare's via `wrangler kv`), for when no server runs, for
 * `--local`/`--remote`, and for the only way to mint a `tokens:admin` token. Each change is a
 * lifecycle entry in the audit trail first (src/tokens/lifecycle.ts, through
 * src/audit/store.ts), naming the operator (`operator:<login>`) as the actor.
 * Imported lazily by scripts/token.ts: it loads wrangler.
 */
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseEnv } from "node:util";
import {
  buildRecord,
  createToken,
  getTokenById,
  type KvLike,
  listTokens,
  overlapEnd,
  publicView,
  revokeToken,
  rotateToken,
  type TokenIndexRecord,
} from "../../src/auth/tokens.ts";
import { ensureLocalKey } from "./audit-key.ts";
import {
  checkRemoteBinding,
  configuredVars,
  type OpenStores,
  openLocalStores,
  PROJECT_ROOT,
  persistRoot,
  wranglerKv,
} from "./kv.ts";
import type { TokenBackend } from "./token-backend.ts";
import { UsageError } from "./token-input.ts";

/**
 * src/tokens/lifecycle.ts, imported by a computed specifier so that this Node-side project does
 * not type-check the audit modules behind it (they need the Workers types; `tsc -p .` checks
 * them). The part of its interface used here:
 */
interface Lifecycle {
  operatorActor(login: string): { id: string; name: string };
  targetOf(r: Partial<TokenIndexRecord>, secrets?: string[], previousExpiresAt?: string): object;
  lifecycleEntry(opts: {
    actor: { id: string; name: string };
    event: "token.create" | "token.rotate" | "token.revoke";
    target: object;
    outcome: "accepted";
    request: { request_id: string; user_agent?: string };
  }): object;
  writeLifecycle(
    kv: KvLike,
    entry: object,
    cfg: { auditRetentionDays: number; auditSigningKey: unknown },
  ): Promise<void>;
  auditWriteConfig(vars: { AUDIT_RETENTION_DAYS?: string; AUDIT_SIGNING_KEY: string }): {
    auditRetentionDays: number;
    auditSigningKey: unknown;
  };
}
const LIFECYCLE: string = "../../src/tokens/lifecycle.ts";

/**
 * The key that signs the lifecycle entries this path writes, as the Worker signs its own:
 * `AUDIT_SIGNING_KEY` from the environment; locally also `.dev.vars`, else the local state's key
 * (the one `npm start` uses, made on first use: scripts/lib/audit-key.ts). `--remote` needs it in
 * the environment: an unsigned entry would be reported by `npm run audit -- verify`.
 */
function signingKeyText(opts: { remote: boolean; persistTo?: string }): string {
  const fromEnv = process.env.AUDIT_SIGNING_KEY?.trim();
  if (fromEnv) return fromEnv;
  if (opts.remote) {
    throw new UsageError(
      "--remote signs a lifecycle entry in the audit trail: set AUDIT_SIGNING_KEY (the Worker's secret) in the environment",
    );
  }
  const file = path.join(PROJECT_ROOT, ".dev.vars");
  const devVars = existsSync(file) ? parseEnv(readFileSync(file, "utf8")) : {};
  return devVars.AUDIT_SIGNING_KEY?.trim() || ensureLocalKey(opts.persistTo);
}

/**
 * Opens the direct path: `--remote` (Cloudflare, wrangler login) or the local state (`stores`
 * when the caller has them open already; it then keeps them open on `close()`).
 */
export async function directBackend(opts: {
  remote: boolean;
  persistTo?: string;
  stores?: OpenStores;
}): Promise<TokenBackend> {
  let tokens: KvLike;
  let audit: KvLike;
  let vars: Record<string, unknown>;
  let label: string;
  let dispose = async () => {};
  if (opts.remote) {
    await checkRemoteBinding("TOKENS");
    await checkRemoteBinding("AUDIT");
    tokens = wranglerKv("TOKENS", { remote: true });
    audit = wranglerKv("AUDIT", { remote: true });
    vars = await configuredVars();
    label = "remote KV (binding TOKENS)";
  } else {
    const root = persistRoot(opts.persistTo);
    const stores = opts.stores ?? (await openLocalStores(opts.persistTo));
    ({ tokens, audit, vars } = stores);
    if (!opts.stores) dispose = stores.dispose;
    const rel = path.relative(process.cwd(), root);
    label = `local state (${rel && !rel.startsWith("..") ? rel : root})`;
  }
  const lifecycle = (await import(LIFECYCLE)) as Lifecycle;
  const { lifecycleEntry, operatorActor, targetOf, writeLifecycle } = lifecycle;
  // Retention and signing key by the Worker's own rules (src/config.ts): entries written here
  // expire and are signed as the Worker's are, and a value the Worker would refuse is refused.
  const cfg = lifecycle.auditWriteConfig({
    AUDIT_RETENTION_DAYS:
      vars.AUDIT_RETENTION_DAYS === undefined ? undefined : String(vars.AUDIT_RETENTION_DAYS),
    AUDIT_SIGNING_KEY: signingKeyText(opts),
  });
  const actor = operatorActor(os.userInfo().username);
  const record = (event: "token.create" | "token.rotate" | "token.revoke", target: object) =>
    writeLifecycle(
      audit,
      lifecycleEntry({
        actor,
        event,
        target,
        outcome: "accepted",
        request: { request_id: randomUUID(), user_agent: "village-edge token CLI (direct KV)" },
      }),
      cfg,
    );
  const active = async (id: string): Promise<TokenIndexRecord | null> => getTokenById(tokens, id);
  return {
    label,
    async create(input) {
      const built = buildRecord(input);
      await record("token.create", targetOf(built));
      return createToken(tokens, input, built);
    },
    list: () => listTokens(tokens),
    async show(id) {
      const index = await active(id);
      return index ? publicView(index) : null;
    },
    async revoke(id) {
      const index = await active(id);
      if (!index) return null;
      if (!index.revoked_at) await record("token.revoke", targetOf(index));
      const revoked = await revokeToken(tokens, id);
      if (!revoked) return null;
      const { wasRevoked, ...rest } = revoked;
      return { ...publicView(rest), wasRevoked };
    },
    async rotate(id, overlapS) {
      const index = await active(id);
      if (!index) return "not_found";
      const now = new Date();
      if (publicView(index, now.getTime()).status !== "active") return "inactive";
      await record("token.rotate", targetOf(index, [], overlapEnd(index, overlapS, now)));
      const rotated = await rotateToken(tokens, id, overlapS, now);
      if (typeof rotated === "string") return rotated;
      return { secret: rotated.secret, record: publicView(rotated.index, now.getTime()) };
    },
    close: dispose,
  };
}
