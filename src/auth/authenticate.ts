import type { Context, MiddlewareHandler } from "hono";
import { userAuthOf } from "../config.ts";
import type { AppEnv } from "../http/context.ts";
import { ProblemError } from "../http/errors.ts";
import { logEvent } from "../http/log.ts";
import { normalizeEmail, type TargetEmail } from "../model/email.ts";
import type { Field } from "../model/fields.ts";
import { toHex } from "../model/hex.ts";
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
  /** The JWT's `sub` (never the JWT itself). */
  subject: string;
  /** What logs, limiters and audit name as the actor: one per distinct `sub` ({@link userActorId}). */
  actorId: string;
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

/**
 * The actor named in logs, limiter keys and audit entries: a token's public id, or a signed-in
 * user's actor id ({@link userActorId}: nothing secret-shaped, at most 133 characters).
 */
export function actorOf(p: Principal): { kind: "token" | "user"; id: string } {
  return p.kind === "token" ? { kind: "token", id: p.tokenId } : { kind: "user", id: p.actorId };
}

/** Longest percent-encoded subject kept readable in an actor id. */
const SUBJECT_MAX = 128;
/** Anything a reviewer's terminal or a scrubber would treat specially: such subjects are hashed. */
const SUBJECT_UNSAFE = /vge_|eyJ|\p{Cc}|\p{Cf}/iu;

/**
 * The actor id of a signed-in user: `user:<percent-encoded sub>` when that is at most 128
 * characters and the subject holds nothing token-shaped or invisible; otherwise
 * `user:%sha256-<64 hex>`, the SHA-256 of a fixed label and the whole subject. Distinct subjects
 * therefore never share an actor (nothing is clipped or scrubbed), and the two forms cannot
 * collide: `encodeURIComponent` never writes `%` before a lowercase letter.
 */
export async function userActorId(subject: string): Promise<string> {
  const encoded = encodeURIComponent(subject);
  if (encoded.length <= SUBJECT_MAX && !SUBJECT_UNSAFE.test(subject)) return `user:${encoded}`;
  const digest = await crypto.subtle.digest(
    "SHA-256",
    new TextEncoder().encode(`village-edge actor\u0000${subject}`),
  );
  return `user:%sha256-${toHex(new Uint8Array(digest))}`;
}

/** The request's caller id ({@link actorOf}), or null before authentication established one. */
export const callerOf = (c: Context): string | null => {
  const principal: Principal | undefined = c.get("principal");
  return principal ? actorOf(principal).id : null;
};

/** Longest `Authorization` header read at all: room for an identity provider's JWT. */
const MAX_HEADER = MAX_JWT_LENGTH + 16;
/** RFC 6750 §2.1: `Bearer` (any case), one or more spaces, a b64token. */
const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;
/** The auth-scheme of a credential (RFC 9110 §11.4: a token, then a space or the end). */
const SCHEME = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+)(?: |$)/;

/**
 * A token whose record lists origins is accepted only with an exactly matching `Origin`
 * header; a token without origins is for servers, and refused when a browser (which always
 * sends `Origin` on a cross-origin PATCH) presents it. Signed-in users are not origin-bound.
 * Separate from {@link authenticate} so that a route that audits refusals can ask its rate
 * limiter first (DESIGN invariant 8): `PATCH /users/:email` calls it after `limitCaller`.
 */
export function assertOrigin(c: Context<AppEnv>): void {
  const p = c.get("principal");
  if (p.kind !== "token") return;
  const origin = c.req.header("Origin");
  if (p.origins === undefined) {
    if (origin !== undefined) {
      throw insufficientScope(
        "This token is for servers; browsers need a token bound to their origin.",
        undefined,
        "server_token_from_browser",
      );
    }
  } else if (origin === undefined || !p.origins.includes(origin)) {
    throw insufficientScope("This token may not be used from this origin.", undefined, "origin");
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
    throw insufficientScope(
      "Your sign-in does not carry a verified email address.",
      undefined,
      "unverified_email",
    );
  }
  const actorId = await userActorId(sub);
  return { kind: "user", subject: sub, actorId, email: address, fields: auth.selfServiceFields };
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
  if (header === undefined || header.trim() === "") throw credentialProblem("no_token");
  const scheme = SCHEME.exec(header.trimStart())?.[1];
  if (scheme !== undefined && scheme.toLowerCase() !== "bearer") throw credentialProblem("other_scheme");
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

/** {@link authenticate} and {@link assertOrigin} as a middleware, for routes that audit no refusal. */
export const bearerAuth = (): MiddlewareHandler<AppEnv> =>
  async function bearerAuth(c, next) {
    await authenticate(c);
    assertOrigin(c);
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
  return !p.domains || inDomains(p.domains, domain);
}

/** True when a (lowercase) domain is one of `domains`: exact, or a subdomain of a `*.` entry. */
export const inDomains = (domains: readonly string[], domain: string): boolean =>
  domains.some((d) =>
    d.startsWith("*.") ? domain.endsWith(d.slice(1)) && domain.length > d.length - 1 : domain === d,
  );

/**
 * Refuses (403) a target the principal may not touch: a token outside its email domains,
 * a signed-in user anyone but themselves (same normalization on both sides, exact compare).
 */
export function assertMayTouch(p: Principal, target: TargetEmail): void {
  if (p.kind === "user") {
    if (p.email !== target.address) {
      throw insufficientScope("You may change only your own record.", undefined, "not_self");
    }
  } else if (!canTouchDomain(p, target.domain)) {
    throw insufficientScope("This token may not change users in this email domain.", "users:write", "domain");
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
