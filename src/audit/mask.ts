/**
 * What the audit trail keeps of caller-supplied strings: field values per `AUDIT_VALUES`,
 * and every other caller or operator string scrubbed of anything shaped like a secret.
 */

import type { AuditValues } from "../config.ts";
import { FIELDS, type Field, type FieldValues } from "../model/fields.ts";
import { callingCodeOf } from "../model/phone.ts";
import { scrub } from "../model/text.ts";

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
    if (mode === "full") out[field] = scrub(value, secrets);
    else out[field] = field === "phone_number" ? maskPhone(value) : maskName(value);
  }
  return out;
}
