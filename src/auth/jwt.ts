/**
 * Verification of end-user JWTs (RFC 7519, JWS compact form) with WebCrypto only.
 * The algorithm is pinned twice: the header must say RS256 or ES256, and the key found by
 * `kid` must be of exactly that type (RSA for RS256, EC P-256 for ES256). `alg: none`,
 * HMAC and every other algorithm are refused before any key is looked at.
 */
import type { UserAuthConfig } from "../config.ts";
import type { JwksProvider, JwtAlg } from "./jwks.ts";

/** Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds. */
export const LEEWAY_S = 60;
/** Longest JWT read at all. */
export const MAX_JWT_LENGTH = 4096;
/** The compact serialization: three base64url parts (the signature may be empty, and is then refused). */
export const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** The claims this service reads from a verified JWT. */
export interface UserClaims {
  sub: string;
  email?: unknown;
  email_verified?: unknown;
}

/**
 * Why a JWT is refused: one tag per check, worded as the log line says it (the caller always
 * gets the one 401 of auth/refusals.ts).
 */
export type JwtRefusal =
  | { reason: "malformed" | "malformed header" | "crit header not supported" | "no kid" }
  | { reason: "algorithm not allowed"; alg: string }
  | { reason: "malformed payload" | "malformed signature" | "bad signature" | "unknown kid" }
  | { reason: "key type does not match alg" | "iss mismatch" | "aud mismatch" | "no exp" | "expired" }
  | { reason: "not yet valid" | "issued in the future" | "no usable sub" };

/** Outcome of {@link verifyUserJwt}: the claims, or why the token is refused. */
export type JwtResult = { ok: true; claims: UserClaims } | ({ ok: false } & JwtRefusal);

const KEY_TYPE: Record<JwtAlg, string> = { RS256: "RSA", ES256: "EC" };
const VERIFY_PARAMS = {
  RS256: { name: "RSASSA-PKCS1-v1_5" },
  ES256: { name: "ECDSA", hash: "SHA-256" },
} as const;
// biome-ignore lint/suspicious/noControlCharactersInRegex: a subject with control characters is refused
const SUBJECT = /^[^\u0000-\u001f\u007f]{1,255}$/;

function decodeB64url(part: string): Uint8Array<ArrayBuffer> {
  const b64 = part.replace(/-/g, "+").replace(/_/g, "/");
  const binary = atob(b64 + "=".repeat((4 - (b64.length % 4)) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function decodeJson(part: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(
      new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(decodeB64url(part)),
    );
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

const fail = (refusal: JwtRefusal): JwtResult => ({ ok: false, ...refusal });

/** Checks the registered claims against the configuration and the clock (`now` in ms). */
function checkClaims(p: Record<string, unknown>, config: UserAuthConfig, now: number): JwtResult {
  const seconds = now / 1000;
  if (p.iss !== config.issuer) return fail({ reason: "iss mismatch" });
  const aud = p.aud;
  const audOk =
    aud === config.audience || (Array.isArray(aud) && aud.length <= 20 && aud.includes(config.audience));
  if (!audOk) return fail({ reason: "aud mismatch" });
  if (typeof p.exp !== "number" || !Number.isFinite(p.exp)) return fail({ reason: "no exp" });
  if (seconds >= p.exp + LEEWAY_S) return fail({ reason: "expired" });
  if (p.nbf !== undefined && (typeof p.nbf !== "number" || seconds + LEEWAY_S < p.nbf)) {
    return fail({ reason: "not yet valid" });
  }
  if (p.iat !== undefined && (typeof p.iat !== "number" || seconds + LEEWAY_S < p.iat)) {
    return fail({ reason: "issued in the future" });
  }
  if (typeof p.sub !== "string" || !SUBJECT.test(p.sub)) return fail({ reason: "no usable sub" });
  return { ok: true, claims: { sub: p.sub, email: p.email, email_verified: p.email_verified } };
}

/**
 * Verifies a JWT's signature and claims (`iss`, `aud` exact; `exp` required; `nbf`, `iat`
 * with {@link LEEWAY_S}), with keys from `jwks`. Resolves to a refusal reason for anything invalid; rejects with
 * `JwksUnavailable` when the keys cannot be fetched, which the caller turns into a 503.
 */
export async function verifyUserJwt(
  jwt: string,
  config: UserAuthConfig,
  jwks: JwksProvider,
  now = Date.now(),
): Promise<JwtResult> {
  if (jwt.length > MAX_JWT_LENGTH || !JWT_SHAPE.test(jwt)) return fail({ reason: "malformed" });
  const [h, p, s] = jwt.split(".");
  const header = decodeJson(h);
  if (!header) return fail({ reason: "malformed header" });
  const alg = header.alg;
  if (alg !== "RS256" && alg !== "ES256")
    return fail({ reason: "algorithm not allowed", alg: String(alg).slice(0, 16) });
  if (header.crit !== undefined) return fail({ reason: "crit header not supported" });
  const kid = header.kid;
  if (typeof kid !== "string" || kid === "" || kid.length > 256) return fail({ reason: "no kid" });
  const payload = decodeJson(p);
  if (!payload) return fail({ reason: "malformed payload" });
  let signature: Uint8Array<ArrayBuffer>;
  try {
    signature = decodeB64url(s);
  } catch {
    return fail({ reason: "malformed signature" });
  }
  if (alg === "ES256" && signature.byteLength !== 64) return fail({ reason: "bad signature" });

  const jwk = await jwks.findKey(config.jwksUrl, kid, now);
  if (!jwk) return fail({ reason: "unknown kid" });
  if (jwk.kty !== KEY_TYPE[alg]) return fail({ reason: "key type does not match alg" });
  let valid: boolean;
  try {
    const key = await jwks.importKey(config.jwksUrl, jwk, alg);
    const data = new TextEncoder().encode(`${h}.${p}`);
    valid = await crypto.subtle.verify(VERIFY_PARAMS[alg], key, signature, data);
  } catch {
    valid = false;
  }
  if (!valid) return fail({ reason: "bad signature" });
  return checkClaims(payload, config, now);
}
