import type { Context, MiddlewareHandler } from "hono";
import { userAuthOf } from "../config.ts";
import type { AppEnv } from "../http/context.ts";
import { ProblemError } from "../http/errors.ts";
import { logEvent } from "../http/log.ts";
import { normalizeEmail, type TargetEmail } from "../model/email.ts";
import type { Field } from "../model/fields.ts";
import { clip, scrub } from "../model/text.ts";
import { type JwksProvider, JwksUnavailable } from "./jwks.ts";
import { JWT_SHAPE, MAX_JWT_LENGTH, verifyUserJwt } from "./jwt.ts";
import { credentialProblem, insufficientScope } from "./refusals.ts";
import { findToken, isWellFormedToken, type Scope, TOKEN_PREFIX } from "./tokens.ts";

/** A caller holding one of our opaque tokens. Carries the public id only, never the secret. */
export interface TokenPrincipal {
  kind: "token";
  tokenId: string;
  tokenName: string;
  scopes: readonly Scope[];
  domains?: readonly string[];
  origins?: readonly string[];
}

/** A signed-in person holding an end-user JWT: may change only their own record. */
export interface UserPrincipal {
  kind: "user";
  /** The JWT's `sub`: what logs and audit name as the actor (never the JWT itself). */
  subject: string;
  /** The verified `email` claim, normalized like a target email. */
  email: string;
  /** What this user may change on their own record (`SELF_SERVICE_FIELDS`). */
  fields: readonly Field[];
}

/** Who is calling. */
export type Principal = TokenPrincipal | UserPrincipal;

declare module "hono" {
  interface ContextVariableMap {
    /** Who is calling, once {@link authenticate} accepted the credential. */
    principal: Principal;
    /** Where JWT signing keys come from: the app's {@link JwksProvider} (set by {@link provideJwks}). */
    jwks: JwksProvider;
  }
}

/** The actor named in logs and audit entries: a token's public id or a user's `sub`. */
export function actorOf(p: Principal): { kind: "token" | "user"; id: string } {
  return p.kind === "token" ? { kind: "token", id: p.tokenId } : { kind: "user", id: p.subject };
}

/**
 * The caller's id as logs and the audit trail name it: a token's public id, or `user:<sub>`
 * (percent-encoded, so a `:` in a subject cannot reach into another actor's index keys;
 * scrubbed of `secrets` and of anything secret-shaped; at most 160 bytes).
 */
export function actorId(p: Principal, secrets: readonly string[] = []): string {
  return p.kind === "token" ? p.tokenId : clip(`user:${encodeURIComponent(scrub(p.subject, secrets))}`, 160);
}

/** The request's caller id ({@link actorId}), or null before authentication established one. */
export const callerOf = (c: Context): string | null => {
  const principal: Principal | undefined = c.get("principal");
  return principal ? actorId(principal) : null;
};

/** Longest `Authorization` header read at all: room for an identity provider's JWT. */
const MAX_HEADER = MAX_JWT_LENGTH + 16;
/** RFC 6750 §2.1: `Bearer` (any case), one or more spaces, a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;
/**
 * A token whose record lists origins is accepted only with an exactly matching `Origin`
 * header; a token without origins is for servers, and refused when a browser (which always
 * sends `Origin` on a cross-origin PATCH) presents it.
 */
function checkOrigin(origins: readonly string[] | undefined, origin: string | undefined): void {
  if (origins === undefined) {
    if (origin !== undefined) {
      throw insufficientScope("This token is for servers; browsers need a token bound to their origin.");
    }
  } else if (origin === undefined || !origins.includes(origin)) {
    throw insufficientScope("This token may not be used from this origin.");
  }
}

async function findRecord(secret: string, kv: KVNamespace, c: Context) {
  if (!isWellFormedToken(secret)) throw credentialProblem("token_malformed");
  let record: Awaited<ReturnType<typeof findToken>>;
  try {
    record = await findToken(kv, secret);
  } catch (err) {
    logEvent("error", "token_lookup_failed", c, { error: String(err) });
    throw new ProblemError("service-unavailable", "Token verification is unavailable; try again later.", {
      headers: { "Retry-After": "5" },
    });
  }
  if (!record) throw credentialProblem("token_unknown");
  return record;
}

async function userPrincipal(jwt: string, env: Env, c: Context): Promise<UserPrincipal> {
  const auth = userAuthOf(env);
  if (!auth) throw credentialProblem("jwt_not_configured");
  let result: Awaited<ReturnType<typeof verifyUserJwt>>;
  try {
    result = await verifyUserJwt(jwt, auth, c.get("jwks"));
  } catch (err) {
    if (!(err instanceof JwksUnavailable)) throw err;
    logEvent("error", "jwks_unavailable", c, { detail: err.message });
    throw new ProblemError("service-unavailable", "Sign-in verification is unavailable; try again later.", {
      headers: { "Retry-After": "5" },
    });
  }
  if (!result.ok) throw credentialProblem(result);
  const { sub, email, email_verified } = result.claims;
  let address: string | undefined;
  try {
    address = typeof email === "string" ? normalizeEmail(email).address : undefined;
  } catch {
    address = undefined;
  }
  if (address === undefined || (email_verified !== undefined && email_verified !== true)) {
    throw insufficientScope("Your sign-in does not carry a verified email address.");
  }
  return { kind: "user", subject: sub, email: address, fields: auth.selfServiceFields };
}

/**
 * Bearer authentication (RFC 6750) for our opaque tokens (`vge_…`) and, when `AUTH_*` are
 * configured, end-user JWTs. Tokens are taken from the `Authorization` header only; a token
 * in the query string is refused. Sets `principal`, or throws a 400/401/403/503 problem.
 */
export async function authenticate(c: Context<AppEnv>): Promise<void> {
  if (c.req.query("access_token") !== undefined) {
    throw credentialProblem("token_in_query");
  }
  const header = c.req.header("Authorization");
  if (header === undefined || header === "") throw credentialProblem("no_token");
  if (header.length > MAX_HEADER) throw credentialProblem("header_too_long");
  const match = BEARER.exec(header);
  if (!match) throw credentialProblem("not_bearer");
  const secret = match[1];
  if (secret.startsWith(TOKEN_PREFIX)) {
    const record = await findRecord(secret, c.env.TOKENS, c);
    c.set("principal", {
      kind: "token",
      tokenId: record.id,
      tokenName: record.name,
      scopes: record.scopes,
      domains: record.domains,
      origins: record.origins,
    });
    // After `principal` is set: a valid token used from the wrong origin is a recorded refusal.
    checkOrigin(record.origins, c.req.header("Origin"));
  } else if (JWT_SHAPE.test(secret)) {
    c.set("principal", await userPrincipal(secret, c.env, c));
  } else {
    throw credentialProblem("unknown_credential");
  }
}

/** Hands every request the app's JWKS cache (one per app: a test's fresh app has a fresh cache). */
export const provideJwks = (jwks: JwksProvider): MiddlewareHandler<AppEnv> =>
  async function provideJwks(c, next) {
    c.set("jwks", jwks);
    await next();
  };

/** {@link authenticate} as a middleware. */
export const bearerAuth = (): MiddlewareHandler<AppEnv> =>
  async function bearerAuth(c, next) {
    await authenticate(c);
    await next();
  };

/** True when the principal may write this field. */
export const canWriteField = (p: Principal, field: Field): boolean =>
  p.kind === "user"
    ? p.fields.includes(field)
    : p.scopes.includes("users:write") || p.scopes.includes(`users:write:${field}`);

/** True when the principal may write at least one field. */
export const canWriteAny = (p: Principal): boolean =>
  p.kind === "user"
    ? p.fields.length > 0
    : p.scopes.some((s) => s === "users:write" || s.startsWith("users:write:"));

/**
 * True when the principal may touch addresses in this (lowercase) domain: no list means any;
 * `example.com` matches exactly; `*.example.com` matches its subdomains only.
 */
export function canTouchDomain(p: Principal, domain: string): boolean {
  if (p.kind === "user") return false; // a user is limited to one address: see assertMayTouch
  if (!p.domains) return true;
  return p.domains.some((d) =>
    d.startsWith("*.") ? domain.endsWith(d.slice(1)) && domain.length > d.length - 1 : domain === d,
  );
}

/**
 * Refuses (403) a target the principal may not touch: a token outside its email domains,
 * a signed-in user anyone but themselves (same normalization on both sides, exact compare).
 */
export function assertMayTouch(p: Principal, target: TargetEmail): void {
  if (p.kind === "user") {
    if (p.email !== target.address) throw insufficientScope("You may change only your own record.");
  } else if (!canTouchDomain(p, target.domain)) {
    throw insufficientScope("This token may not change users in this email domain.", "users:write");
  }
}

/** Refuses the request unless the principal is a token holding `scope`. */
export const requireScope = (scope: Scope): MiddlewareHandler<AppEnv> =>
  async function requireScope(c, next) {
    const p = c.get("principal");
    if (p.kind !== "token" || !p.scopes.includes(scope)) {
      throw insufficientScope(`This token lacks the ${scope} scope.`, scope);
    }
    await next();
  };
