/**
 * Caller and operator text made safe to keep (audit entries, log lines, key metadata): secrets
 * replaced, length bounded in JSON bytes. Both the access log (http/) and the audit trail use it.
 */

/** Anything shaped like one of our tokens (even truncated) or a JWT. */
const SECRET_SHAPES = [/vge_[0-9a-f]{8,}/gi, /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.?[A-Za-z0-9_-]*/g];
/** Every string a secret shape matches contains one of these: text without them needs no replacing. */
const SECRET_START = /vge_|eyJ/i;
const REDACTED = "[redacted]";

/** Replaces token- and JWT-shaped substrings and every given secret (e.g. the Village key). */
export function scrub(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const secret of secrets) {
    if (secret.length >= 8 && out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  if (SECRET_START.test(out)) for (const shape of SECRET_SHAPES) out = out.replace(shape, REDACTED);
  return out;
}

const encoder = new TextEncoder();
/** Printable ASCII that JSON writes as is: one byte per character. */
const JSON_PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
const jsonBytes = (s: string): number => encoder.encode(JSON.stringify(s)).length - 2;

/**
 * Cuts a string so that its JSON encoding (without quotes) takes at most `maxBytes` UTF-8
 * bytes, ending cut strings with `...`. Key metadata is limited in bytes, not characters.
 */
export function clip(text: string, maxBytes: number): string {
  if (text.length <= maxBytes && JSON_PLAIN.test(text)) return text; // one byte per character
  if (jsonBytes(text) <= maxBytes) return text;
  let out = "";
  let used = 0;
  const budget = maxBytes - 3; // room for the "..."
  for (const ch of text) {
    const size = jsonBytes(ch);
    if (used + size > budget) break;
    out += ch;
    used += size;
  }
  return `${out}...`;
}
