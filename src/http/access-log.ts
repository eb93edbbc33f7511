import type { Context, MiddlewareHandler } from "hono";
import { matchedRoutes } from "hono/route";
import { clip, scrub } from "../audit/mask.ts";
import { actorOf, type Principal } from "../auth/authenticate.ts";
import type { AppEnv } from "./context.ts";
import { logEvent } from "./log.ts";

/** The pattern of the route that handled the request (`/users/:email`), never the path itself. */
function handlerRoute(c: Context<AppEnv>): string | undefined {
  return matchedRoutes(c).findLast((route) => route.method !== "ALL")?.path;
}

/** The caller as the audit trail names it: a token's public id, or `user:<sub>` for a signed-in user. */
function actorId(principal: Principal | undefined): string | null {
  if (!principal) return null;
  const actor = actorOf(principal);
  return actor.kind === "token" ? actor.id : clip(`user:${encodeURIComponent(scrub(actor.id))}`, 160);
}

/**
 * One structured JSON line per request, written once the response is ready: request id,
 * method, route pattern (never the path: it carries the target email), status, outcome, token
 * id (`user:<sub>` for a signed-in user, as in the audit trail), upstream status and latency. Never a token, the Village key or a field value.
 *
 * `outcome` is what the request came to: the upstream outcome when it reached Village
 * (`accepted`, `not_found`, `timeout`, ...), else the problem type it was refused with
 * (`unauthorized`, `validation-failed`, ...), else `ok`.
 */
export const accessLog = (): MiddlewareHandler<AppEnv> =>
  async function accessLog(c, next) {
    const started = Date.now();
    await next();
    const status = c.res.status;
    logEvent(status >= 500 ? "error" : "info", "request", c, {
      method: c.req.method,
      route: handlerRoute(c) ?? null,
      status,
      outcome: c.get("upstream")?.outcome ?? c.get("problem") ?? "ok",
      token_id: actorId(c.get("principal")),
      upstream_status: c.get("upstream")?.status ?? null,
      latency_ms: Date.now() - started,
    });
  };
