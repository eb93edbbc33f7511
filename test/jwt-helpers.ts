/**
 * A test identity provider inside workerd: WebCrypto keys, JWT signing, and a `fetch` spy that
 * serves the JWKS at its URL, records Village calls, and fails loudly on anything else.
 */
import { env } from "cloudflare:test";
import { vi } from "vitest";
import type { UpstreamCall } from "./helpers.ts";

export const ISSUER = "https://idp.test/";
export const AUDIENCE = "village-edge";

/** A signing key pair and its public JWK as a JWKS would list it. */
export interface TestKey {
  kid: string;
  alg: "RS256" | "ES256";
  privateKey: CryptoKey;
  publicJwk: JsonWebKey & { kid: string };
}

const enc = new TextEncoder();

export function b64url(data: Uint8Array | string): string {
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Generates an RS256 (RSA 2048) or ES256 (P-256) key pair. */
export async function generateKey(alg: "RS256" | "ES256", kid = crypto.randomUUID()): Promise<TestKey> {
  const params =
    alg === "RS256"
      ? {
          name: "RSASSA-PKCS1-v1_5",
          modulusLength: 2048,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: "SHA-256",
        }
      : { name: "ECDSA", namedCurve: "P-256" };
  const pair = (await crypto.subtle.generateKey(params, true, ["sign", "verify"])) as CryptoKeyPair;
  const jwk = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
  return {
    kid,
    alg,
    privateKey: pair.privateKey,
    publicJwk: { kty: jwk.kty, n: jwk.n, e: jwk.e, crv: jwk.crv, x: jwk.x, y: jwk.y, kid, alg, use: "sig" },
  };
}

/** Signs `claims` with `key`; `header` overrides or adds header members. */
export async function signJwt(
  key: TestKey,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  const h = b64url(JSON.stringify({ alg: key.alg, typ: "JWT", kid: key.kid, ...header }));
  const p = b64url(JSON.stringify(claims));
  const params = key.alg === "RS256" ? { name: "RSASSA-PKCS1-v1_5" } : { name: "ECDSA", hash: "SHA-256" };
  const sig = await crypto.subtle.sign(params, key.privateKey, enc.encode(`${h}.${p}`));
  return `${h}.${p}.${b64url(new Uint8Array(sig))}`;
}

/** Claims of a valid sign-in for `email`, expiring in five minutes; `extra` overrides. */
export function claimsFor(email: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: `user-${email}`,
    email,
    email_verified: true,
    iat: now,
    exp: now + 300,
    ...extra,
  };
}

/** What the JWKS URL answers: a key set, or a failure. */
export type JwksAnswer = { keys: unknown[] } | (() => Response | Promise<Response>);

/**
 * Replaces `fetch`: the test's JWKS URL answers from `jwks()` (read on every call, so a test can
 * rotate keys), the Village base is recorded and answered 201, anything else throws.
 */
export function spyIdpAndUpstream(jwksUrl: string, jwks: () => JwksAnswer) {
  const upstream: UpstreamCall[] = [];
  const jwksCalls: string[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const req = new Request(input, init);
    if (req.url === jwksUrl) {
      jwksCalls.push(req.url);
      const answer = jwks();
      return typeof answer === "function" ? answer() : Response.json(answer);
    }
    if (!req.url.startsWith(env.VILLAGE_API_BASE)) throw new Error(`unexpected outbound fetch to ${req.url}`);
    upstream.push({
      url: req.url,
      method: req.method,
      headers: Object.fromEntries(req.headers),
      body: await req.text(),
      redirect: req.redirect,
    });
    return Response.json({ status: "queued" }, { status: 201 });
  });
  return { upstream, jwksCalls };
}

/** Bindings that turn end-user sign-in on (a test gets a JWKS cache of its own from `createApp()`). */
export function userAuthBindings(extra: Partial<Env> = {}): Partial<Env> & { AUTH_JWKS_URL: string } {
  return {
    AUTH_JWKS_URL: "https://idp.test/jwks.json",
    AUTH_ISSUER: ISSUER,
    AUTH_AUDIENCE: AUDIENCE,
    ...extra,
  };
}
