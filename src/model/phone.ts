/**
 * Phone numbers in international format: whether a number is possible in its numbering plan
 * (country), and its E.164 form.
 *
 * This is a port of what libphonenumber-js does in `parsePhoneNumberFromString(text).isPossible()`
 * and `.number`, for text that `+` starts and that otherwise holds only digits, spaces, dots,
 * dashes and parentheses (all the schema lets through), running on libphonenumber's own metadata
 * (src/model/phone-metadata.ts). The library itself would be a quarter of the Worker's size budget.
 * test/phone.test.ts checks that the port answers exactly as the library does, on every
 * country's example number and its variants and on random input.
 *
 * Steps, as in the library: the calling code is the shortest prefix of 1 to 3 digits that is
 * one; the national prefix (and carrier code) is stripped by the plan's rule only when the
 * result still fits the plan; where countries share a calling code, the country is the first
 * one whose leading digits or number-type patterns fit; the number is possible when its
 * national length is one of that country's possible lengths.
 *
 * libphonenumber-js is MIT-licensed; its notice is in THIRD-PARTY-NOTICES.md.
 */
import { phoneMetadata } from "./phone-metadata.ts";

/** A numbering plan as the metadata stores it (libphonenumber-js "min" format, version 4). */
type Plan = readonly unknown[];
type Types = readonly (readonly [string, number[]?] | 0)[];

interface Tables {
  callingCodes: Record<string, string[]>;
  countries: Record<string, Plan>;
  nonGeographic: Record<string, Plan>;
}
let tables: Tables | undefined;
/** The metadata's three tables, decoded on the first phone number an isolate sees. */
function metadata(): Tables {
  if (!tables) {
    const m = phoneMetadata();
    tables = {
      callingCodes: m.country_calling_codes as Record<string, string[]>,
      countries: m.countries as unknown as Record<string, Plan>,
      nonGeographic: (m.nonGeographic ?? {}) as unknown as Record<string, Plan>,
    };
  }
  return tables;
}

/** What an international number may be written with: `+`, then ASCII digits, spaces, dots, dashes, parentheses. */
export const INTERNATIONAL_FORMAT = /^\+[0-9 ().-]{4,30}$/;

const MIN_NATIONAL = 2;
const MAX_NATIONAL = 17;

const nationalPattern = (p: Plan) => p[2] as string;
const possibleLengths = (p: Plan) => p[3] as number[] | undefined;
const nationalPrefix = (p: Plan) => (p[5] || undefined) as string | undefined;
const prefixForParsing = (p: Plan) => (p[7] || nationalPrefix(p)) as string | undefined;
const prefixTransformRule = (p: Plan) => (p[8] || undefined) as string | undefined;
const leadingDigits = (p: Plan) => (p[10] || undefined) as string | undefined;
const types = (p: Plan) => (p[11] || undefined) as Types | undefined;

/**
 * Compiled patterns, built once per isolate: the library compiles them on every call. Keyed by
 * the metadata's own pattern string and the anchoring (`^(?:p)$`, `^(?:p)` or none), never by
 * a concatenated source: a new string would be hashed in full on every lookup.
 */
const compiled = {
  entire: new Map<string, RegExp>(),
  start: new Map<string, RegExp>(),
  plain: new Map<string, RegExp>(),
};
function regex(pattern: string, anchor: keyof typeof compiled = "plain"): RegExp {
  const cache = compiled[anchor];
  let re = cache.get(pattern);
  if (!re) {
    re = new RegExp(
      anchor === "entire" ? `^(?:${pattern})$` : anchor === "start" ? `^(?:${pattern})` : pattern,
    );
    cache.set(pattern, re);
  }
  return re;
}

const matchesEntirely = (text: string, pattern: string) => regex(pattern, "entire").test(text);

/** The geographic countries of a calling code, or undefined for a non-geographic one. */
function countriesOf(callingCode: string): string[] | undefined {
  const list = metadata().callingCodes[callingCode];
  return list && !(list.length === 1 && list[0].length === 3) ? list : undefined;
}

/** The plan a calling code selects: its main country's, or the non-geographic one. */
function mainPlan(callingCode: string): Plan | undefined {
  const countries = countriesOf(callingCode);
  return countries ? metadata().countries[countries[0]] : metadata().nonGeographic[callingCode];
}

type LengthCheck = "possible" | "too-short" | "too-long" | "invalid-length";

function checkLength(national: string, plan: Plan): LengthCheck {
  const lengths = possibleLengths(plan);
  if (!lengths) return "possible";
  const length = national.length;
  if (lengths[0] === length) return "possible";
  if (lengths[0] > length) return "too-short";
  if (lengths[lengths.length - 1] < length) return "too-long";
  return lengths.indexOf(length, 1) >= 0 ? "possible" : "invalid-length";
}

/** True when the national number fits one of the plan's number types (the library's getNumberType). */
function hasNumberType(national: string, plan: Plan): boolean {
  if (!matchesEntirely(national, nationalPattern(plan))) return false;
  for (const type of types(plan) ?? []) {
    if (type === 0 || !type[0]) continue;
    const lengths = type[1] ?? possibleLengths(plan);
    if (lengths && !lengths.includes(national.length)) continue;
    if (matchesEntirely(national, type[0])) return true;
  }
  return false;
}

/** The country a national number belongs to when several share its calling code. */
function countryOf(callingCode: string, national: string): string | undefined {
  const countries = countriesOf(callingCode);
  if (!countries) return undefined;
  if (countries.length === 1) return countries[0];
  for (const country of countries) {
    const plan = metadata().countries[country];
    const leading = leadingDigits(plan);
    if (leading) {
      if (national && national.search(regex(leading)) === 0) return country;
    } else if (hasNumberType(national, plan)) {
      return country;
    }
  }
  return undefined;
}

/** Strips a national prefix written after the calling code, when the plan's rules allow it. */
function stripNationalPrefix(number: string, callingCode: string, plan: Plan): string {
  const prefix = prefixForParsing(plan);
  if (!number || !prefix) return number;
  const pattern = regex(prefix, "start");
  const match = pattern.exec(number);
  if (!match) return number;
  const groups = match.length - 1;
  const rule = prefixTransformRule(plan);
  const stripped =
    rule && groups > 0 && match[groups] ? number.replace(pattern, rule) : number.slice(match[0].length);
  if (stripped === number) return number;
  const pattern2 = nationalPattern(plan);
  if (matchesEntirely(number, pattern2) && !matchesEntirely(stripped, pattern2)) return number;
  if (possibleLengths(plan)) {
    const country = countryOf(callingCode, stripped);
    const check = checkLength(stripped, country ? metadata().countries[country] : plan);
    if (check === "too-short" || check === "invalid-length") return number;
  }
  return stripped;
}

/**
 * The calling code an international number starts with (after `+`, the shortest prefix of 1 to
 * 3 digits that is one, as libphonenumber reads it), or undefined.
 */
export function callingCodeOf(text: string): string | undefined {
  const digits = text.replace(/[^0-9]/g, "");
  if (digits[0] === "0") return undefined;
  for (let i = 1; i <= 3 && i <= digits.length; i++) {
    const candidate = digits.slice(0, i);
    if (countriesOf(candidate) || metadata().nonGeographic[candidate]) return candidate;
  }
  return undefined;
}

/** Why a number in international format is not a possible one. */
export type PhoneProblem =
  | { reason: "unknown-calling-code" }
  | { reason: "too-short" | "too-long" | "invalid-length"; callingCode: string; country?: string };

/**
 * Parses text that matches {@link INTERNATIONAL_FORMAT}: the E.164 form when the number is
 * possible in its numbering plan, otherwise what is wrong with it (the library's
 * `validatePhoneNumberLength` reasons, for the country the number belongs to).
 */
export function checkPhone(text: string): { e164: string } | PhoneProblem {
  const digits = text.replace(/[^0-9]/g, "");
  const callingCode = digits.length < 3 ? undefined : callingCodeOf(digits);
  const plan = callingCode && mainPlan(callingCode);
  if (!callingCode || !plan) {
    // "+1", "+44": a calling code and nothing after it is a number too short to be one.
    const short = digits.length > 0 && digits.length < 4 && callingCodeOf(`${digits}000`) === digits;
    return short ? { reason: "too-short", callingCode: digits } : { reason: "unknown-calling-code" };
  }
  const rest = digits.slice(callingCode.length);
  const geo = countriesOf(callingCode)?.[0];
  if (!rest) return { reason: "too-short", callingCode, country: geo };
  const national = stripNationalPrefix(rest, callingCode, plan);
  const country = countryOf(callingCode, national);
  const named = country ?? geo;
  if (national.length < MIN_NATIONAL) return { reason: "too-short", callingCode, country: named };
  if (national.length > MAX_NATIONAL) return { reason: "too-long", callingCode, country: named };
  const selected = country ? metadata().countries[country] : plan;
  if (!possibleLengths(selected)) {
    return metadata().nonGeographic[callingCode]
      ? { e164: `+${callingCode}${national}` }
      : { reason: "invalid-length", callingCode, country: named };
  }
  const length = checkLength(national, selected);
  return length === "possible"
    ? { e164: `+${callingCode}${national}` }
    : { reason: length, callingCode, country: named };
}

/**
 * Parses text that matches {@link INTERNATIONAL_FORMAT}. Returns the E.164 form when the number
 * is possible in its numbering plan, otherwise undefined.
 */
export function possibleE164(text: string): string | undefined {
  const checked = checkPhone(text);
  return "e164" in checked ? checked.e164 : undefined;
}
