/**
 * The identity provider's signing keys (`AUTH_JWKS_URL`), fetched with a deadline and cached in
 * memory by a {@link JwksProvider} (the Worker keeps one per isolate; a test makes a fresh one
 * with {@link createJwksProvider}). An unknown `kid` triggers at most one refresh per {@link MIN_REFRESH_MS},
 * so a flood of made-up key ids cannot hammer the provider. Only public RSA and P-256 keys
 * meant for signatures are kept.
 */
import { readAtMost } from "../http/bounded-read.ts";

/** The algorithms end-user JWTs may use; nothing else is ever accepted. */
export type JwtAlg = "RS256" | "ES256";

/** A public key as kept from the JWKS: only the members needed to import it. */
export type PublicJwk =
  | { kid: string; kty: "RSA"; n: string; e: string }
  | { kid: string; kty: "EC"; crv: "P-256"; x: string; y: string };

/** The JWKS could not be fetched or read: the caller answers 503, never a pass. */
export class JwksUnavailable extends Error {
  override name = "JwksUnavailable";
}

/** How long a fetched key set is used before it is fetched again. */
export const TTL_MS = 10 * 60_000;
/** Least time between two fetches of one JWKS caused by an unknown `kid`. */
export const MIN_REFRESH_MS = 30_000;
/** After a failed fetch, requests get 503 for this long before the JWKS is asked again. */
export const FAILURE_PAUSE_MS = 5_000;
const FETCH_TIMEOUT_MS = 3_000;
const MAX_JWKS_BYTES = 64 * 1024;
const MAX_KEYS = 50;
/** Smallest RSA modulus accepted, in bytes (2048 bits). */
const MIN_RSA_BYTES = 256;

interface KeySet {
  keys: Map<string, PublicJwk>;
  fetchedAt: number;
  imported: Map<string, CryptoKey>;
}

const B64URL = /^[A-Za-z0-9_-]+$/;
const isB64 = (v: unknown): v is string => typeof v === "string" && v.length <= 2048 && B64URL.test(v);
const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

/** Keeps a JWK only when it is a public signature key of a supported type; returns its public part. */
function publicKey(jwk: unknown): PublicJwk | null {
  if (!isObject(jwk) || typeof jwk.kid !== "string" || jwk.kid === "" || jwk.kid.length > 256) return null;
  if ("d" in jwk || "p" in jwk || "k" in jwk) return null; // private or symmetric material: never used
  if (jwk.use !== undefined && jwk.use !== "sig") return null;
  if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes("verify"))) {
    return null;
  }
  if (jwk.kty === "RSA" && (jwk.alg === undefined || jwk.alg === "RS256") && isB64(jwk.n) && isB64(jwk.e)) {
    if (Math.floor((jwk.n.length * 3) / 4) < MIN_RSA_BYTES) return null;
    return { kid: jwk.kid, kty: "RSA", n: jwk.n, e: jwk.e };
  }
  if (
    jwk.kty === "EC" &&
    jwk.crv === "P-256" &&
    (jwk.alg === undefined || jwk.alg === "ES256") &&
    isB64(jwk.x) &&
    isB64(jwk.y)
  ) {
    return { kid: jwk.kid, kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y };
  }
  return null;
}

async function readBounded(res: Response): Promise<string> {
  if (!res.body) return "";
  const bytes = await readAtMost(res.body, MAX_JWKS_BYTES);
  if (bytes === undefined) throw new JwksUnavailable("JWKS larger than 64 KiB");
  return new TextDecoder().decode(bytes);
}

const IMPORT_PARAMS = {
  RS256: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
  ES256: { name: "ECDSA", namedCurve: "P-256" },
} as const;

/** The key sets of the JWKS URLs in use, cached; what {@link verifyUserJwt} asks for keys. */
export interface JwksProvider {
  /**
   * Finds the key with this `kid`, fetching the JWKS when there is none cached or it is older
   * than {@link TTL_MS}, and refreshing it once for an unknown `kid` (rate-limited). Null when
   * the key is unknown; throws {@link JwksUnavailable} when the JWKS cannot be had.
   */
  findKey(url: string, kid: string, now?: number): Promise<PublicJwk | null>;
  /** Imports (once per key set) a key found by `findKey` for verifying `alg`. */
  importKey(url: string, jwk: PublicJwk, alg: JwtAlg): Promise<CryptoKey>;
}

/**
 * A JWKS cache of its own, keyed by JWKS URL. Only plain data and CryptoKeys are kept between
 * requests: never a promise or a stream, which workerd binds to the request that created them.
 */
export function createJwksProvider(): JwksProvider {
  const sets = new Map<string, KeySet>();
  const lastAttempt = new Map<string, number>();

  async function load(url: string, now: number): Promise<KeySet> {
    lastAttempt.set(url, now);
    let res: Response;
    try {
      res = await fetch(url, {
        headers: { Accept: "application/json" },
        redirect: "manual",
        signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
      });
    } catch (err) {
      throw new JwksUnavailable(`JWKS fetch failed: ${err instanceof Error ? err.name : "error"}`);
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new JwksUnavailable(`JWKS answered ${res.status}`);
    }
    let doc: unknown;
    try {
      doc = JSON.parse(await readBounded(res));
    } catch (err) {
      if (err instanceof JwksUnavailable) throw err;
      throw new JwksUnavailable("JWKS is not JSON");
    }
    if (!isObject(doc) || !Array.isArray(doc.keys)) throw new JwksUnavailable("JWKS has no keys array");
    const keys = new Map<string, PublicJwk>();
    for (const jwk of doc.keys.slice(0, MAX_KEYS)) {
      const key = publicKey(jwk);
      if (key && !keys.has(key.kid)) keys.set(key.kid, key);
    }
    const set: KeySet = { keys, fetchedAt: now, imported: new Map() };
    sets.set(url, set);
    return set;
  }

  async function findKey(url: string, kid: string, now = Date.now()): Promise<PublicJwk | null> {
    let set = sets.get(url);
    const tried = lastAttempt.get(url) ?? Number.NEGATIVE_INFINITY;
    const lastFailed = !set || set.fetchedAt < tried;
    if (!set || now - set.fetchedAt >= TTL_MS) {
      if (lastFailed && now - tried < FAILURE_PAUSE_MS) {
        throw new JwksUnavailable("JWKS failed moments ago; not asking again yet");
      }
      set = await load(url, now);
    } else if (!set.keys.has(kid) && now - tried >= MIN_REFRESH_MS) {
      set = await load(url, now);
    }
    return set.keys.get(kid) ?? null;
  }

  async function importKey(url: string, jwk: PublicJwk, alg: JwtAlg): Promise<CryptoKey> {
    const cached = sets.get(url)?.imported.get(`${alg}:${jwk.kid}`);
    if (cached) return cached;
    const { kid: _kid, ...material } = jwk;
    const key = await crypto.subtle.importKey("jwk", material, IMPORT_PARAMS[alg], false, ["verify"]);
    sets.get(url)?.imported.set(`${alg}:${jwk.kid}`, key);
    return key;
  }

  return { findKey, importKey };
}
