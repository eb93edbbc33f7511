/**
 * Every response of this service is built here, in one call into the runtime: body, status
 * and all headers at once (setting headers on a built Response costs a runtime call each).
 * {@link standardHeaders} makes that safe by construction: a response built any other way
 * (`c.json` in a new route) still gets every standard header, and a warning says it did.
 */
import type { Context, MiddlewareHandler } from "hono";
import type { AppEnv } from "./context.ts";
import { logEvent } from "./log.ts";

type HeaderMap = Record<string, string>;

declare module "hono" {
  interface ContextVariableMap {
    /** Headers a middleware wants on whatever response this request gets (set by http/cors.ts). */
    responseHeaders?: HeaderMap;
  }
}

/** Responses built by {@link respond}: they carry every standard header, nothing to check. */
const built = new WeakSet<Response>();

/** The headers every response of this request must carry. */
function standardOf(c: Context<AppEnv>): HeaderMap {
  const all: HeaderMap = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...c.get("responseHeaders"),
  };
  const requestId = c.get("requestId");
  if (requestId) all["X-Request-Id"] = requestId;
  return all;
}

/**
 * Builds a response with the headers every response carries (no caching, no sniffing, the
 * request id), the headers middleware asked for (`responseHeaders`, e.g. CORS) and `headers`.
 * `Vary` values from both are joined, never overwritten.
 */
export function respond(
  c: Context<AppEnv>,
  body: string | null,
  status: number,
  headers: HeaderMap = {},
): Response {
  // One object, as standardOf() builds it, without a second one: this is every response's path.
  const fromMiddleware = c.get("responseHeaders");
  const all: HeaderMap = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    ...fromMiddleware,
    ...headers,
  };
  if (fromMiddleware?.Vary && headers.Vary) all.Vary = `${fromMiddleware.Vary}, ${headers.Vary}`;
  const requestId = c.get("requestId");
  if (requestId) all["X-Request-Id"] = requestId;
  const res = new Response(body, { status, headers: all });
  built.add(res);
  return res;
}

/** A JSON response (`application/json` unless `headers` names another type). */
export const respondJson = (
  c: Context<AppEnv>,
  value: unknown,
  status = 200,
  headers: HeaderMap = {},
): Response => respond(c, JSON.stringify(value), status, { "Content-Type": "application/json", ...headers });

/**
 * The guarantee behind {@link respond}: after the app answered, a response that `respond` did
 * not build (one membership check) gets each standard header it lacks, `Vary` values added
 * to its own, and a `response_headers_added` warning naming what was missing. Mounted once,
 * before any route, by src/index.ts.
 */
export const standardHeaders = (): MiddlewareHandler<AppEnv> =>
  async function standardHeaders(c, next) {
    await next();
    if (built.has(c.res)) return;
    const headers = new Headers(c.res.headers);
    const added = Object.entries(standardOf(c)).filter(([name, value]) => {
      const present = headers.get(name);
      if (present === null) headers.set(name, value);
      else if (name !== "Vary" || present.includes(value)) return false;
      else headers.set(name, `${present}, ${value}`);
      return true;
    });
    if (added.length === 0) return;
    logEvent("warn", "response_headers_added", c, { added: added.map(([name]) => name) });
    const res = new Response(c.res.body, { status: c.res.status, statusText: c.res.statusText, headers });
    c.res = undefined; // Hono would otherwise copy the old headers over the new ones
    c.res = res;
  };
