import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./context.ts";
import { ProblemError } from "./errors.ts";
import { logEvent } from "./log.ts";
import { type Field, findToken, isWellFormedToken, type Scope } from "./tokens.ts";

/** Who is calling, as established by a token. Carries the public id only, never the secret. */
export interface Principal {
  kind: "token";
  tokenId: string;
  tokenName: string;
  scopes: readonly Scope[];
  domains?: readonly string[];
  origins?: readonly string[];
}

/** Longest `Authorization` header read at all; a token is far shorter. */
const MAX_HEADER = 256;
/** RFC 6750 §2.1: `Bearer` (any case), one or more spaces, a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;
const REALM = 'Bearer realm="village-edge"';

const challenge = (error?: string, extra = "") => (error ? `${REALM}, error="${error}"${extra}` : REALM);

/** 401 for a missing token (no error code, RFC 6750 §3.1). */
const missingToken = () =>
  new ProblemError("unauthorized", "A bearer token is required.", {
    headers: { "WWW-Authenticate": challenge() },
  });

/** The one 401 for unknown, malformed, expired and revoked tokens alike. */
export const invalidToken = () =>
  new ProblemError("unauthorized", "The bearer token is invalid, expired or revoked.", {
    headers: { "WWW-Authenticate": challenge("invalid_token") },
  });

/** 400 for a header that is not one well-formed bearer credential. */
const invalidRequest = (detail: string) =>
  new ProblemError("invalid-request", detail, {
    headers: { "WWW-Authenticate": challenge("invalid_request") },
  });

/** 403 naming the scope that would be needed. */
export const insufficientScope = (detail: string, scope: string) =>
  new ProblemError("forbidden", detail, {
    headers: { "WWW-Authenticate": challenge("insufficient_scope", `, scope="${scope}"`) },
  });

/**
 * Bearer-token authentication (RFC 6750). Tokens are taken from the `Authorization`
 * header only; a token in the query string is refused. Sets `principal`.
 */
export const bearerAuth = (): MiddlewareHandler<AppEnv> =>
  async function bearerAuth(c, next) {
    if (c.req.query("access_token") !== undefined) {
      throw invalidRequest("Tokens are accepted only in the Authorization header.");
    }
    const header = c.req.header("Authorization");
    if (header === undefined || header === "") throw missingToken();
    if (header.length > MAX_HEADER) throw invalidToken();
    const match = BEARER.exec(header);
    if (!match) {
      throw invalidRequest("The Authorization header must be a single `Bearer <token>` credential.");
    }
    const secret = match[1];
    if (!isWellFormedToken(secret)) throw invalidToken();
    let record: Awaited<ReturnType<typeof findToken>>;
    try {
      record = await findToken(c.env.TOKENS, secret);
    } catch (err) {
      logEvent("error", "token_lookup_failed", c, { error: String(err) });
      throw new ProblemError("service-unavailable", "Token verification is unavailable; try again later.", {
        headers: { "Retry-After": "5" },
      });
    }
    if (!record) throw invalidToken();
    c.set("principal", {
      kind: "token",
      tokenId: record.id,
      tokenName: record.name,
      scopes: record.scopes,
      domains: record.domains,
      origins: record.origins,
    });
    await next();
  };

/** True when the principal may write this field. */
export const canWriteField = (p: Principal, field: Field): boolean =>
  p.scopes.includes("users:write") || p.scopes.includes(`users:write:${field}`);

/** True when the principal may write at least one field. */
export const canWriteAny = (p: Principal): boolean =>
  p.scopes.some((s) => s === "users:write" || s.startsWith("users:write:"));

/**
 * True when the principal may touch addresses in this (lowercase) domain: no list means any;
 * `example.com` matches exactly; `*.example.com` matches its subdomains only.
 */
export function canTouchDomain(p: Principal, domain: string): boolean {
  if (!p.domains) return true;
  return p.domains.some((d) =>
    d.startsWith("*.") ? domain.endsWith(d.slice(1)) && domain.length > d.length - 1 : domain === d,
  );
}

/** Refuses the request unless the principal holds `scope`. */
export const requireScope = (scope: Scope): MiddlewareHandler<AppEnv> =>
  async function requireScope(c, next) {
    if (!c.get("principal").scopes.includes(scope)) {
      throw insufficientScope(`This token lacks the ${scope} scope.`, scope);
    }
    await next();
  };
