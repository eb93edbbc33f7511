/**
 * What the audit trail keeps of caller-supplied strings: field values per `AUDIT_VALUES`,
 * and every other caller or operator string scrubbed of anything shaped like a secret.
 */

import { FIELDS, type Field } from "../auth/tokens.ts";
import type { AuditValues } from "../config.ts";
import type { Changes } from "../users/changes.ts";
import { callingCodeOf } from "../users/phone.ts";

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

/**
 * Masks a name so that its first and last character and its length remain: `Lovelace` becomes
 * `L******e`, `Ada` becomes `A**`, names of one or two characters become all stars.
 */
export function maskName(value: string): string {
  const chars = [...value];
  const n = chars.length;
  if (n <= 2) return "*".repeat(n);
  if (n === 3) return `${chars[0]}**`;
  return `${chars[0]}${"*".repeat(n - 2)}${chars[n - 1]}`;
}

/**
 * Masks an E.164 number so that its country calling code and last two digits remain:
 * `+442071234567` becomes `+44********67`.
 */
export function maskPhone(value: string): string {
  const digits = value.replace(/\D/g, "");
  const cc = callingCodeOf(value) ?? "";
  const national = cc && digits.startsWith(cc) ? digits.slice(cc.length) : digits;
  if (national.length <= 4) return `+${cc}${"*".repeat(national.length)}`;
  return `+${cc}${"*".repeat(national.length - 2)}${national.slice(-2)}`;
}

/** The values an audit entry keeps for a validated change, or undefined in `none` mode. */
export function auditValues(
  changes: Changes,
  mode: AuditValues,
  secrets: readonly string[],
): Partial<Record<Field, string>> | undefined {
  if (mode === "none") return undefined;
  const out: Partial<Record<Field, string>> = {};
  for (const field of FIELDS) {
    const value = changes[field];
    if (value === undefined) continue;
    if (mode === "full") out[field] = scrub(value, secrets);
    else out[field] = field === "phone_number" ? maskPhone(value) : maskName(value);
  }
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
