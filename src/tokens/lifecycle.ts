/**
 * Token lifecycle entries in the audit trail: created, rotated, revoked (or refused), by an
 * admin token over HTTP (src/tokens/routes.ts) or by an operator through the CLI's direct KV
 * path (scripts/token.ts). Web APIs only: it runs in the Worker and in Node. Every write goes
 * through src/audit/store.ts's `writeEntry`, like every other entry. Never a secret or a hash.
 */

import { safeText } from "../audit/mask.ts";
import {
  type AuditWriteConfig,
  type AuditWriter,
  newAuditId,
  type RefusalOutcome,
  type TokenEvent,
  type TokenEventEntry,
  type TokenEventTarget,
  writeEntry,
} from "../audit/store.ts";
import type { TokenRecord } from "../auth/tokens.ts";
import { parseAuditWriting } from "../config.ts";
import { ProblemError } from "../http/errors.ts";
import type { RefusalReason } from "../http/reasons.ts";

/** Who acted: an admin token's public id and name, or `operator:<name>` for the direct path. */
export interface Actor {
  id: string;
  name: string;
}

/** The actor of the CLI's direct KV path: the operator's login name, reduced to a safe id. */
export function operatorActor(login: string): Actor {
  const name = login.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 64) || "unknown";
  return { id: `operator:${name}`, name: "token CLI, direct KV" };
}

/** What an entry keeps of a token: public fields only, caller text scrubbed of secret shapes. */
export function targetOf(
  r: Pick<TokenRecord, "name" | "scopes" | "domains" | "origins" | "expires_at"> & { id?: string },
  secrets: readonly string[] = [],
  previousExpiresAt?: string,
): TokenEventTarget {
  return {
    id: r.id,
    name: safeText(r.name, secrets),
    scopes: [...r.scopes],
    domains: r.domains?.map((d) => safeText(d, secrets)),
    origins: r.origins?.map((o) => safeText(o, secrets)),
    expires_at: r.expires_at,
    previous_expires_at: previousExpiresAt,
  };
}

/** The request an entry came from: its id and header copies (already scrubbed and clipped). */
export interface RequestFacts {
  request_id: string;
  origin?: string;
  ip?: string;
  user_agent?: string;
}

/** Builds a lifecycle entry. `outcome` is `accepted` for a done action, else the refusal's. */
export function lifecycleEntry(opts: {
  actor: Actor;
  event: TokenEvent;
  target?: TokenEventTarget;
  outcome: "accepted" | RefusalOutcome;
  reason?: RefusalReason;
  /** The one refusal entry a minute beyond the caller's refusal budget. */
  overBudget?: true;
  request: RequestFacts;
  secrets?: readonly string[];
  now?: number;
}): TokenEventEntry {
  const now = opts.now ?? Date.now();
  return {
    v: 1,
    id: newAuditId(now),
    kind: "token",
    ...opts.request,
    time: new Date(now).toISOString(),
    token_id: opts.actor.id,
    token_name: safeText(opts.actor.name, opts.secrets),
    event: opts.event,
    target: opts.target,
    outcome: opts.outcome,
    reason: opts.reason,
    over_budget: opts.overBudget,
  };
}

/** Writes a lifecycle entry, signed (its `entry:` key and its actor's and target's `by-token:` keys). */
export function writeLifecycle(
  kv: AuditWriter,
  entry: TokenEventEntry,
  cfg: AuditWriteConfig,
): Promise<void> {
  return writeEntry(kv, entry, cfg);
}

/**
 * The CLI direct path's audit write configuration, read from the Worker's vars and signing key
 * by the Worker's own rules ({@link parseAuditWriting}); when they are wrong, an Error that
 * names the binding and the rule (the Worker's generic 500 text would say neither).
 */
export function auditWriteConfig(vars: {
  AUDIT_RETENTION_DAYS?: string;
  AUDIT_SIGNING_KEY: string;
}): AuditWriteConfig {
  try {
    return parseAuditWriting(vars);
  } catch (err) {
    throw err instanceof ProblemError && err.logDetail ? new Error(err.logDetail) : err;
  }
}
