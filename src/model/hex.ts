/**
 * Lowercase hex of bytes, by table: token secrets and their SHA-256 (auth/tokens.ts), audit ids
 * (audit/store.ts), hashed actor ids (auth/authenticate.ts) and the digests' SHA-256 (mac.ts).
 */

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]];
  return out;
}
