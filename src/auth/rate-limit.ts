/**
 * Rate limits through the Workers Rate Limiting bindings: per caller (token, or signed-in
 * user) for changes and, separately, for reviews; per target email for phone changes; and
 * per caller for audited refusals, the budget that bounds what refusals cost in KV writes.
 * Limits are per Cloudflare location and eventually consistent; their numbers live in
 * wrangler.toml, the write bound they give in docs/storage.md.
 */
import type { Context } from "hono";
import type { AppEnv } from "../http/context.ts";
import { ProblemError } from "../http/errors.ts";
import { logEvent } from "../http/log.ts";
import type { RefusalReason } from "../http/reasons.ts";
import { canonicalEmail } from "../model/email.ts";
import { actorOf } from "./authenticate.ts";

/** Every limiter counts over a 60 s period (wrangler.toml); a refused caller may retry after it. */
const PERIOD_S = 60;

type Ctx = Context<AppEnv>;

declare module "hono" {
  interface ContextVariableMap {
    /** Set once the caller passed its rate limiter: only then may a refusal be audited. */
    callerAdmitted?: boolean;
  }
}

/**
 * A refusal that is logged but not audited: a flood must not cost one KV write per request.
 * The log line is written by the caller of this (see `limitCaller`, `limitPhoneChange`).
 */
const limited = (detail: string, reason: RefusalReason) =>
  new ProblemError("rate-limited", detail, {
    headers: { "Retry-After": String(PERIOD_S) },
    skipAudit: true,
    reason,
  });

async function allowed(limiter: RateLimit, key: string, c: Ctx) {
  try {
    return (await limiter.limit({ key })).success;
  } catch (err) {
    logEvent("error", "rate_limiter_failed", c, { error: String(err) });
    throw new ProblemError("service-unavailable", "Rate limiting is unavailable; try again later.", {
      headers: { "Retry-After": "5" },
    });
  }
}

const callerKey = (c: Ctx): string => {
  const actor = actorOf(c.get("principal"));
  return `${actor.kind}:${actor.id}`;
};

/**
 * Refuses a caller (token, or signed-in user) over its limit, before the body is read or anything
 * is stored; marks the request admitted, which a refusal needs to be audited at all.
 */
export async function limitCaller(c: Ctx): Promise<void> {
  if (!(await allowed(c.env.TOKEN_RATE_LIMITER, callerKey(c), c))) {
    logEvent("warn", "rate_limited", c, { limiter: "caller", actor: actorOf(c.get("principal")).id });
    throw limited("Too many changes from this caller; retry later.", "rate_limited");
  }
  c.set("callerAdmitted", true);
}

/**
 * Refuses a phone change when this email's phone changed too often lately. Keyed on the
 * canonical (lowercased) address: `Ada@…` and `ADA@…` are one target.
 */
export async function limitPhoneChange(c: Ctx, email: string): Promise<void> {
  if (!(await allowed(c.env.PHONE_RATE_LIMITER, `phone:${canonicalEmail(email)}`, c))) {
    logEvent("warn", "rate_limited", c, { limiter: "phone", actor: actorOf(c.get("principal")).id });
    throw limited("This user's phone number was changed too often; retry later.", "phone_rate_limited");
  }
}

/** Refuses a reviewer over its limit of `GET /audit` and `GET /audit/:id` calls (each up to 5 KV lists). */
export async function limitReview(c: Ctx): Promise<void> {
  if (!(await allowed(c.env.REVIEW_RATE_LIMITER, callerKey(c), c))) {
    logEvent("warn", "rate_limited", c, { limiter: "review", actor: actorOf(c.get("principal")).id });
    throw limited("Too many reviews from this caller; retry later.", "rate_limited");
  }
}

/**
 * What the audit trail may spend on this caller's refusal: `entry` within its budget of audited
 * refusals a minute (REFUSAL_RATE_LIMITER); beyond it, `summary` once a minute
 * (REFUSAL_SUMMARY_LIMITER: one entry marked `over_budget`), else `none` (logs only). A failing
 * limiter spends nothing: a refusal is never worth a write the bound does not cover.
 */
export async function refusalBudget(c: Ctx): Promise<"entry" | "summary" | "none"> {
  const key = callerKey(c);
  try {
    if ((await c.env.REFUSAL_RATE_LIMITER.limit({ key })).success) return "entry";
    if ((await c.env.REFUSAL_SUMMARY_LIMITER.limit({ key })).success) return "summary";
  } catch (err) {
    logEvent("error", "rate_limiter_failed", c, { limiter: "refusal", error: String(err) });
  }
  return "none";
}
