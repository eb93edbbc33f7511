/**
 * What the audit trail keeps of caller-supplied strings: field values per `AUDIT_VALUES`,
 * and every other caller or operator string scrubbed of anything shaped like a secret.
 */

import type { AuditValues } from "../config.ts";
import { FIELDS, type Field, type FieldValues } from "../model/fields.ts";
import { callingCodeOf } from "../model/phone.ts";
import { scrub } from "../model/text.ts";

/** C0 and C1 controls, DEL (all `\p{Cc}`) and the bidi controls (marks, embeddings, overrides, isolates). */
const UNSAFE_TEXT = /[\p{Cc}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/gu;

/**
 * Makes caller- or operator-supplied text inert for whoever reads the trail (DESIGN invariant 9):
 * every control or bidi character becomes the six characters of its `\uXXXX` escape, so no
 * terminal or editor can be steered by it and the reader still sees that it was there.
 */
export function inert(text: string): string {
  return text.replace(UNSAFE_TEXT, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** {@link scrub}, then {@link inert}: what the trail keeps of any caller or operator string. */
export const safeText = (text: string, secrets: readonly string[] = []): string =>
  inert(scrub(text, secrets));

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
  changes: FieldValues,
  mode: AuditValues,
  secrets: readonly string[],
): Partial<Record<Field, string>> | undefined {
  if (mode === "none") return undefined;
  const out: Partial<Record<Field, string>> = {};
  for (const field of FIELDS) {
    const value = changes[field];
    if (value === undefined) continue;
    if (mode === "full") out[field] = safeText(value, secrets);
    else out[field] = field === "phone_number" ? maskPhone(value) : maskName(value);
  }
  return out;
}
