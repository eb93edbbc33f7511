/**
 * Every response of this service is built here, in one call into the runtime: body, status
 * and all headers at once (setting headers on a built Response costs a runtime call each).
 */
import type { Context } from "hono";
import type { AppEnv } from "./context.ts";

type HeaderMap = Record<string, string>;

declare module "hono" {
  interface ContextVariableMap {
    /** Headers a middleware wants on whatever response this request gets (set by http/cors.ts). */
    responseHeaders?: HeaderMap;
  }
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
  return new Response(body, { status, headers: all });
}

/** A JSON response (`application/json` unless `headers` names another type). */
export const respondJson = (
  c: Context<AppEnv>,
  value: unknown,
  status = 200,
  headers: HeaderMap = {},
): Response => respond(c, JSON.stringify(value), status, { "Content-Type": "application/json", ...headers });
