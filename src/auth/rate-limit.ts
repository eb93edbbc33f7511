/**
 * Rate limits through the Workers Rate Limiting bindings: one per caller (token) for every
 * change, and a tighter one per target email for phone changes. Limits are per Cloudflare
 * location and eventually consistent; their numbers live in wrangler.toml.
 */
import type { Context } from "hono";
import type { AppEnv } from "../http/context.ts";
import { ProblemError } from "../http/errors.ts";
import { logEvent } from "../http/log.ts";
import { actorOf } from "./authenticate.ts";

/** Both limiters count over a 60 s period (wrangler.toml); a refused caller may retry after it. */
const PERIOD_S = 60;

type Ctx = Context<AppEnv>;

/**
 * A refusal that is logged but not audited: a flood must not cost one KV write per request.
 * The log line is written by the caller of this (see `limitCaller`, `limitPhoneChange`).
 */
const limited = (detail: string) =>
  new ProblemError("rate-limited", detail, {
    headers: { "Retry-After": String(PERIOD_S) },
    skipAudit: true,
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

/** Refuses a caller (token, or signed-in user) over its limit, before the body is read or anything is stored. */
export async function limitCaller(c: Ctx): Promise<void> {
  const actor = actorOf(c.get("principal"));
  if (!(await allowed(c.env.TOKEN_RATE_LIMITER, `${actor.kind}:${actor.id}`, c))) {
    logEvent("warn", "rate_limited", c, { limiter: "caller", actor: actor.id });
    throw limited("Too many changes from this caller; retry later.");
  }
}

/** Refuses a phone change when this email's phone changed too often lately. */
export async function limitPhoneChange(c: Ctx, email: string): Promise<void> {
  if (!(await allowed(c.env.PHONE_RATE_LIMITER, `phone:${email}`, c))) {
    logEvent("warn", "rate_limited", c, { limiter: "phone", actor: actorOf(c.get("principal")).id });
    throw limited("This user's phone number was changed too often; retry later.");
  }
}
