/**
 * MACs of audit records: HMAC-SHA-256 (WebCrypto, in workerd and in Node alike) over a canonical
 * serialization that binds the KV key name, the listing metadata and the value, so an edited
 * value, edited metadata or a value moved to another key all fail. Hand-written on purpose: it is
 * a dozen lines over `crypto.subtle`, and an outside auditor must be able to re-implement it from
 * docs/audit.md ("Proving the trail") without our code.
 *
 * Keys are `<kid>:<base64 secret>` (at least 32 bytes); a MAC is `<kid>:<base64url HMAC>`, so
 * verification picks the right key after a rotation.
 */
import { toHex } from "./hex.ts";

/** One signing key: its id (written into every MAC) and its secret bytes, base64. */
export interface SigningKey {
  kid: string;
  secret: string;
}

/** The domain-separation tag that starts every signed message; bump it with the format. */
const TAG = "village-edge-audit-v1";
const KID = /^[A-Za-z0-9_-]{1,32}$/;
const MIN_SECRET_BYTES = 32;
const encoder = new TextEncoder();

/** Parses `<kid>:<base64 secret>`; throws an Error saying what is wrong (never the secret). */
export function parseSigningKey(raw: string): SigningKey {
  const text = raw.trim();
  const colon = text.indexOf(":");
  const kid = text.slice(0, colon);
  const secret = text.slice(colon + 1);
  if (colon < 1 || !KID.test(kid))
    throw new Error("must be <key id>:<base64 secret>, key id [A-Za-z0-9_-]{1,32}");
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(atob(secret), (ch) => ch.charCodeAt(0));
  } catch {
    throw new Error("has a secret that is not base64");
  }
  if (bytes.length < MIN_SECRET_BYTES) throw new Error(`has a secret shorter than ${MIN_SECRET_BYTES} bytes`);
  return { kid, secret };
}

/** Parses a comma-separated list of keys (current and retired ones, for verification), by id. */
export function parseKeyRing(raw: string): Map<string, SigningKey> {
  const ring = new Map<string, SigningKey>();
  for (const part of raw.split(",")) {
    if (part.trim() === "") continue;
    const key = parseSigningKey(part);
    ring.set(key.kid, key);
  }
  return ring;
}

/** Imported keys, one per key value for the isolate's life (a deployment has one or two). */
const imported = new Map<string, Promise<CryptoKey>>();

function cryptoKey(key: SigningKey): Promise<CryptoKey> {
  const id = `${key.kid}:${key.secret}`;
  let found = imported.get(id);
  if (!found) {
    if (imported.size >= 8) imported.clear();
    const bytes = Uint8Array.from(atob(key.secret), (ch) => ch.charCodeAt(0));
    found = crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, [
      "sign",
      "verify",
    ]);
    imported.set(id, found);
  }
  return found;
}

/**
 * UTF-8 byte length of a string, as `TextEncoder` encodes it (a lone surrogate becomes U+FFFD,
 * 3 bytes), without encoding it: the message is then encoded once, in one call.
 */
export function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c < 0xdc00 && c >= 0xd800 && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 2; // a surrogate pair: 4 bytes for its 2 code units
      i++;
    } else n += 2;
  }
  return n;
}

/**
 * The signed message: the tag, then the key name, the metadata JSON (without `mac`; empty when
 * the key has none) and the value, each as `<UTF-8 byte length>:<bytes>` and a line feed.
 */
export function signedMessage(name: string, metadataJson: string, value: string): Uint8Array<ArrayBuffer> {
  return encoder.encode(
    `${TAG}\n${utf8Length(name)}:${name}\n${utf8Length(metadataJson)}:${metadataJson}\n${utf8Length(value)}:${value}`,
  ) as Uint8Array<ArrayBuffer>;
}

const B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * Base64url without padding (RFC 4648 §5), by table: one string per MAC instead of a spread,
 * `btoa` and three replacements (tested against `btoa` in test/audit-verify.test.ts).
 */
export function base64url(bytes: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | (bytes[i + 1] << 8) | bytes[i + 2];
    out += B64URL[n >> 18] + B64URL[(n >> 12) & 63] + B64URL[(n >> 6) & 63] + B64URL[n & 63];
  }
  if (i < bytes.length) {
    const n = (bytes[i] << 16) | (i + 1 < bytes.length ? bytes[i + 1] << 8 : 0);
    out += B64URL[n >> 18] + B64URL[(n >> 12) & 63];
    if (i + 1 < bytes.length) out += B64URL[(n >> 6) & 63];
  }
  return out;
}

function fromBase64url(text: string): Uint8Array<ArrayBuffer> | null {
  try {
    return Uint8Array.from(atob(text.replaceAll("-", "+").replaceAll("_", "/")), (ch) => ch.charCodeAt(0));
  } catch {
    return null;
  }
}

/** The MAC (`<kid>:<base64url>`) of one record. */
export async function macOf(
  key: SigningKey,
  name: string,
  metadataJson: string,
  value: string,
): Promise<string> {
  const sig = await crypto.subtle.sign(
    "HMAC",
    await cryptoKey(key),
    signedMessage(name, metadataJson, value),
  );
  return `${key.kid}:${base64url(new Uint8Array(sig))}`;
}

/** `ok`, `bad` (does not match) or `unknown-key` (a key id the ring does not hold). Constant-time compare. */
export async function checkMac(
  ring: ReadonlyMap<string, SigningKey>,
  mac: string,
  name: string,
  metadataJson: string,
  value: string,
): Promise<"ok" | "bad" | "unknown-key"> {
  const colon = mac.indexOf(":");
  const key = colon > 0 ? ring.get(mac.slice(0, colon)) : undefined;
  if (!key) return "unknown-key";
  const sig = fromBase64url(mac.slice(colon + 1));
  if (sig?.length !== 32) return "bad";
  const ok = await crypto.subtle.verify(
    "HMAC",
    await cryptoKey(key),
    sig,
    signedMessage(name, metadataJson, value),
  );
  return ok ? "ok" : "bad";
}

/** Lowercase hex SHA-256 of a string's UTF-8 bytes (digest parts and the digest chain). */
export async function sha256Hex(text: string): Promise<string> {
  return toHex(new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(text))));
}
