import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import type { AppEnv } from "./context.ts";
import { logEvent } from "./log.ts";
import { REFUSAL_REASONS } from "./reasons.ts";

/** The pattern of the route that handled the request (`/users/:email`), never the path itself. */
function handlerRoute(c: Context<AppEnv>): string | undefined {
  return matchedRoutes(c).findLast((route) => route.method !== "ALL")?.path;
}

declare module "hono" {
  interface ContextVariableMap {
    /** What the upstream answered, when the request reached it (set by users/route.ts). */
    upstream?: { outcome: string; status?: number };
  }
}

/** Names the caller of a request for the log line, or null when none was established. */
export type CallerOf = (c: Context<AppEnv>) => string | null;

/**
 * One structured JSON line per request, written once the response is ready: request id,
 * method, route pattern (never the path: it carries the target email), status, outcome, token
 * id (a signed-in user's actor id, as in the audit trail), upstream status and latency; for a
 * refusal also the problem type, the exact reason and the field names it tried. Never a token,
 * the Village key or a field value.
 *
 * `callerOf` names the caller (auth/ knows who it is; this layer does not).
 * `outcome` uses the trail's words: the upstream outcome when the request reached Village
 * (`accepted`, `not_found`, `timeout`, ...), else the refusal's (`denied`, `invalid`,
 * `rate_limited`), else the problem type (`not-found`, `internal`, ...), else `ok`.
 */
export const accessLog = ({ callerOf }: { callerOf: CallerOf }): MiddlewareHandler<AppEnv> =>
  async function accessLog(c, next) {
    const started = Date.now();
    await next();
    const status = c.res.status;
    const reason = c.get("reason");
    logEvent(status >= 500 ? "error" : "info", "request", c, {
      method: c.req.method,
      route: handlerRoute(c) ?? null,
      status,
      outcome: c.get("upstream")?.outcome ?? (reason && REFUSAL_REASONS[reason]) ?? c.get("problem") ?? "ok",
      problem: c.get("problem"),
      reason,
      fields: c.get("attemptedFields"),
      token_id: callerOf(c),
      upstream_status: c.get("upstream")?.status ?? null,
      latency_ms: Date.now() - started,
    });
  };
