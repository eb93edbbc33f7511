import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./context.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** This request's id: echoed on every response, logged, forwarded upstream, audited. */
    requestId: string;
  }
}

/** A caller-supplied request id is kept only when it looks like this. */
export const WELL_FORMED = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** Something a careless client might paste as a request id: one of our tokens, or a JWT. */
const CREDENTIAL_LIKE = /vge_|eyJ/i;

/**
 * Takes the caller's `X-Request-Id` when well formed (and not credential-like: it is echoed and
 * logged), otherwise generates one. The id is echoed on every response, forwarded upstream and
 * stored in audit entries (audit ids are generated separately: request ids may repeat).
 */
export const requestId = (): MiddlewareHandler<AppEnv> =>
  // Not async: it returns the rest of the chain's promise instead of awaiting it (one promise
  // and one microtask less per request; errors still reach Hono's handler through it).
  function requestId(c, next) {
    const given = c.req.header("X-Request-Id");
    const usable = given !== undefined && WELL_FORMED.test(given) && !CREDENTIAL_LIKE.test(given);
    c.set("requestId", usable ? given : crypto.randomUUID());
    return next();
  };
