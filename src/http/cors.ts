/**
 * CORS for browser frontends. Origins are exact (`ALLOWED_ORIGINS`): an allowed origin is
 * echoed back, never `*` and never another origin; a disallowed or absent one gets no
 * `Access-Control-*` header at all. Responses that depend on `Origin` say so in `Vary`.
 */
import type { Context, Handler, MiddlewareHandler } from "hono";
import type { AppEnv } from "./context.ts";
import { ProblemError } from "./errors.ts";
import { respond } from "./respond.ts";

export const ALLOW_METHODS = "PATCH";
export const ALLOW_HEADERS = "Authorization, Content-Type, X-Request-Id";
/** Headers a page's script may read besides the CORS-safelisted ones. */
export const EXPOSE_HEADERS = "X-Request-Id, Retry-After, WWW-Authenticate";
/** How long a browser may cache a preflight answer, in seconds. */
export const MAX_AGE_S = 600;
/** Methods of the CORS-enabled resource, for `Allow` on a plain `OPTIONS`. */
const ALLOW = "PATCH, OPTIONS";

/** The exact origins allowed, read from the bindings (config.ts's `allowedOriginsOf`). */
export interface CorsOptions {
  allowedOrigins: (env: Env) => readonly string[];
}

/** The request's `Origin` when it is exactly one of the allowed origins, else null. */
function allowedOrigin(c: Context<AppEnv>, { allowedOrigins }: CorsOptions): string | null {
  const origin = c.req.header("Origin");
  if (origin === undefined) return null;
  return allowedOrigins(c.env).includes(origin) ? origin : null;
}

/**
 * Puts `Vary: Origin` on every response and, for an allowed origin only, `Access-Control-Allow-Origin`
 * (that origin) and `Access-Control-Expose-Headers`: error responses too, so a page can read
 * problem+json bodies (every response is built by src/http/respond.ts, which adds them). No
 * credentials mode: callers send a bearer token, not cookies.
 */
export const cors = (options: CorsOptions): MiddlewareHandler<AppEnv> =>
  // Not async: returns the rest of the chain's promise (see src/http/request-id.ts).
  function cors(c, next) {
    const origin = allowedOrigin(c, options);
    c.set(
      "responseHeaders",
      origin === null
        ? { Vary: "Origin" }
        : {
            Vary: "Origin",
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Expose-Headers": EXPOSE_HEADERS,
          },
    );
    return next();
  };

/**
 * `OPTIONS` on a CORS-enabled route. A preflight from an allowed origin gets the methods and
 * headers it may use and a `Max-Age`; from any other origin a 403 without CORS headers, which
 * the browser treats as a refusal. A plain `OPTIONS` (no preflight) gets 204 with `Allow`.
 */
export const preflight = (options: CorsOptions): Handler<AppEnv> =>
  function preflight(c) {
    const isPreflight =
      c.req.header("Origin") !== undefined && c.req.header("Access-Control-Request-Method") !== undefined;
    if (!isPreflight) return respond(c, null, 204, { Allow: ALLOW });
    if (allowedOrigin(c, options) === null) {
      throw new ProblemError("forbidden", "This origin may not call this service from a browser.", {
        headers: { Vary: "Access-Control-Request-Method, Access-Control-Request-Headers" },
      });
    }
    return respond(c, null, 204, {
      "Access-Control-Allow-Methods": ALLOW_METHODS,
      "Access-Control-Allow-Headers": ALLOW_HEADERS,
      "Access-Control-Max-Age": String(MAX_AGE_S),
      Vary: "Access-Control-Request-Method, Access-Control-Request-Headers",
    });
  };
