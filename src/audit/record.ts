/**
 * Where `PATCH /users/:email` meets the audit trail (DESIGN invariant 5): the intent is
 * written and awaited before forwarding, the outcome is written after it under its own key,
 * and a refusal of a request that presented a valid token gets one entry.
 */
import type { Context } from "hono";
import { actorOf, type Principal } from "../auth/authenticate.ts";
import { refusalBudget } from "../auth/rate-limit.ts";
import type { AppEnv } from "../http/context.ts";
import { ProblemError } from "../http/errors.ts";
import { logEvent } from "../http/log.ts";
import { isAudited, REFUSAL_REASONS } from "../http/reasons.ts";
import { parseEmailSegment, rawEmailSegment, type TargetEmail } from "../model/email.ts";
import { changedFields, FIELDS, type FieldValues } from "../model/fields.ts";
import { clip } from "../model/text.ts";
import { auditValues, safeText } from "./mask.ts";
import {
  type AuditEntry,
  type AuditOutcomeRecord,
  newAuditId,
  type RefusalOutcome,
  type UpstreamAuditOutcome,
  withRetry,
  writeEntry,
  writeOutcome,
} from "./store.ts";

/** Byte limits of the header copies kept in an entry's value. */
const HEADER_MAX = { Origin: 256, "CF-Connecting-IP": 64, "User-Agent": 256 } as const;

declare module "hono" {
  interface ContextVariableMap {
    /** The validated target of a user change (set by users/route.ts; a refusal records it). */
    target?: TargetEmail;
    /** The validated change, once the body passed validation (set by users/route.ts). */
    changes?: FieldValues;
    /** Set once the intent of a forwarded change is in the audit trail. */
    auditId?: string;
    /** Field names a refused change tried to set (for the access log; the trail has them too). */
    attemptedFields?: readonly string[];
  }
}

type Ctx = Context<AppEnv>;

/** What a forwarded change came to, as users/upstream.ts reports it (its `UpstreamResult` is one). */
export interface ForwardResult {
  outcome: UpstreamAuditOutcome | "village_auth_failed";
  status?: number;
  latencyMs: number;
}

/**
 * Who acted: a token's public id and name, or for a signed-in user their actor id (one per
 * distinct `sub`, percent-encoded or hashed: `userActorId`) and a fixed name.
 */
function actorFields(p: Principal, secrets: string[]): { token_id: string; token_name: string } {
  if (p.kind === "token") return { token_id: p.tokenId, token_name: safeText(p.tokenName, secrets) };
  return { token_id: p.actorId, token_name: "end-user JWT" };
}

/** What every entry keeps of the request: its id and header copies, scrubbed and clipped. */
export function requestFacts(c: Ctx) {
  const secrets = [c.get("config").villageApiKey];
  const header = (name: keyof typeof HEADER_MAX) => {
    const value = c.req.header(name);
    return value ? clip(safeText(value, secrets), HEADER_MAX[name]) : undefined;
  };
  return {
    request_id: safeText(c.get("requestId"), secrets),
    origin: header("Origin"),
    ip: header("CF-Connecting-IP"),
    user_agent: header("User-Agent"),
  };
}

/** What every entry holds about the request and its (valid) token; scrubbed of secrets. */
function baseEntry(c: Ctx): AuditEntry {
  const cfg = c.get("config");
  const now = Date.now();
  const { request_id, ...headers } = requestFacts(c);
  return {
    v: 1,
    id: newAuditId(now),
    request_id,
    time: new Date(now).toISOString(),
    ...actorFields(c.get("principal"), [cfg.villageApiKey]),
    ...headers,
    fields: [],
    values_mode: cfg.auditValues,
  };
}

/**
 * Writes the intent of a change and waits for KV to take it. Throws a 503 when it could not
 * be written: the caller must then not forward the change. Sets `auditId`.
 */
export async function recordIntent(c: Ctx, target: TargetEmail, changes: FieldValues): Promise<AuditEntry> {
  const cfg = c.get("config");
  const entry: AuditEntry = {
    ...baseEntry(c),
    email: target.address,
    fields: changedFields(changes),
    values: auditValues(changes, cfg.auditValues, [cfg.villageApiKey]),
  };
  try {
    await writeEntry(c.env.AUDIT, entry, cfg);
  } catch (err) {
    throw new ProblemError(
      "service-unavailable",
      "The change could not be recorded in the audit trail, so it was not forwarded; try again later.",
      {
        headers: { "Retry-After": "5" },
        logDetail: `audit intent not written, not forwarded: ${String(err)}`,
      },
    );
  }
  c.set("auditId", entry.id);
  return entry;
}

/**
 * Records what came of a forwarded change, after the response, retried; a lost outcome is
 * logged as an error with everything it would have said.
 */
export function recordOutcome(c: Ctx, intent: AuditEntry, result: ForwardResult): void {
  const record: AuditOutcomeRecord = {
    v: 1,
    id: intent.id,
    time: new Date().toISOString(),
    // A refused Village key is an upstream failure to reviewers; operators see it in the logs.
    outcome: result.outcome === "village_auth_failed" ? "upstream_error" : result.outcome,
    upstream_status: result.status,
    latency_ms: result.latencyMs,
  };
  const cfg = c.get("config");
  c.executionCtx.waitUntil(
    withRetry(() => writeOutcome(c.env.AUDIT, record, cfg)).catch((err) =>
      logEvent("error", "audit_outcome_lost", c, {
        audit_id: record.id,
        outcome: record.outcome,
        upstream_status: record.upstream_status,
        latency_ms: record.latency_ms,
        error: String(err),
      }),
    ),
  );
}

/**
 * The outcome a refusal is recorded with, or undefined when it is not recorded: server
 * errors (nothing was decided about the caller), reasons that are never audited (no valid
 * token, rate limits, client aborts: floods must not cost a write) and `skipAudit` errors.
 */
export function refusalOutcome(err: ProblemError): RefusalOutcome | undefined {
  if (err.skipAudit || err.status < 400 || err.status >= 500) return undefined;
  if (!err.reason || !isAudited(err.reason)) return undefined;
  const outcome = REFUSAL_REASONS[err.reason];
  return outcome === "denied" || outcome === "invalid" ? outcome : undefined;
}

/** The target of a refusal: the validated one, else the path's if it is valid. */
function refusalTarget(c: Ctx): TargetEmail | undefined {
  const validated = c.get("target");
  if (validated) return validated;
  try {
    return parseEmailSegment(rawEmailSegment(c.req.url));
  } catch {
    return undefined;
  }
}

/**
 * Field names a body that failed validation tried to change. Only known field names are
 * kept: an unknown key is caller text and could be anything, a token included.
 */
function attemptedFields(c: Ctx, err: ProblemError) {
  if (err.type !== "validation-failed") return []; // only then was the body read and parsed
  const body = c.get("parsedBody");
  if (typeof body !== "object" || body === null || Array.isArray(body)) return [];
  return FIELDS.filter((f) => Object.hasOwn(body, f));
}

/**
 * Call with whatever `PATCH /users/:email` threw. Notes the fields a refused change tried
 * (for the access log). A refusal of an audited reason (a {@link ProblemError} with a 4xx
 * status, before any intent was written) gets one entry, written after the response, but
 * only once authentication established a principal and the caller limiter admitted it, and
 * only within the caller's refusal budget (`refusalBudget`): beyond it one entry a minute is
 * marked `over_budget`, the rest go to the logs only (`audit_refusal_suppressed`).
 */
export async function recordRefusal(c: Ctx, err: unknown): Promise<void> {
  if (!(err instanceof ProblemError) || c.get("auditId") !== undefined) return;
  const changes = c.get("changes");
  const fields = changes ? changedFields(changes) : attemptedFields(c, err);
  c.set("attemptedFields", fields);
  const principal: Principal | undefined = c.get("principal");
  const outcome = refusalOutcome(err);
  if (!principal || !c.get("callerAdmitted") || !outcome) return;
  const cfg = c.get("config");
  const reason = err.reason;
  let entry: AuditEntry | undefined;
  const write = async () => {
    const budget = await refusalBudget(c);
    if (budget === "none") {
      logEvent("warn", "audit_refusal_suppressed", c, {
        actor: actorOf(principal).id,
        outcome,
        reason,
        fields,
      });
      return;
    }
    entry = {
      ...baseEntry(c),
      email: refusalTarget(c)?.address,
      fields,
      values: changes ? auditValues(changes, cfg.auditValues, [cfg.villageApiKey]) : undefined,
      outcome,
      reason,
      over_budget: budget === "summary" ? true : undefined,
    };
    const written = entry;
    await withRetry(() => writeEntry(c.env.AUDIT, written, cfg));
  };
  c.executionCtx.waitUntil(
    write().catch((error) =>
      logEvent("error", "audit_refusal_lost", c, {
        audit_id: entry?.id,
        outcome,
        reason,
        fields,
        token_id: entry?.token_id,
        error: String(error),
      }),
    ),
  );
}
