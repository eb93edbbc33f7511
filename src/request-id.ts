import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./context.ts";

/** A caller-supplied request id is kept only when it looks like this. */
export const WELL_FORMED = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/**
 * Takes the caller's `X-Request-Id` when well formed, otherwise generates one.
 * The id is echoed on every response, forwarded upstream and used as the audit id.
 */
export const requestId = (): MiddlewareHandler<AppEnv> =>
  async function requestId(c, next) {
    const given = c.req.header("X-Request-Id");
    c.set("requestId", given && WELL_FORMED.test(given) ? given : crypto.randomUUID());
    await next();
  };
