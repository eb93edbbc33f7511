/**
 * Generates `src/model/phone-metadata.ts`: libphonenumber-js's own "min" metadata, reduced to what
 * parsing an international number and checking that it is possible needs. The Worker's phone
 * check (src/model/phone.ts, a port of the library's parsing) runs on it; the whole "min" set would
 * be about a third of the Worker's gzip budget.
 *
 *   node tools/phone-metadata.ts           regenerate the file (after updating libphonenumber-js)
 *   node tools/phone-metadata.ts --check   exit 1 if the committed file is not exactly what this
 *                                            script makes from the installed package, or if the proof below fails
 *
 * What is kept, per numbering plan: calling code, national number pattern, possible lengths,
 * national prefix, national prefix for parsing and its transform rule, leading digits.
 * Number-type patterns are kept only where they can decide the answer: where countries sharing
 * a calling code answer differently for some national length (see `disputedLengths`), the
 * country libphonenumber picks by number type matters at those lengths, and a type can match
 * only at its own lengths; everywhere else every country of a calling code gives the same
 * answer, whichever is picked. Dropped: formatting rules and extension prefixes,
 * which only format, and international dialling prefixes, which only matter for numbers written
 * without `+` (the schema requires it).
 *
 * Both modes then prove the reduction with the library itself: on every country's example
 * number and variants of it (every national length from 1 to 17 digits, a national prefix
 * written after the calling code, spaces, dashes, parentheses, an extension), on numbers built
 * from the number-type patterns of calling codes that countries share, and on random numbers
 * for every calling code, `isPossible()`, the E.164 `number` and the extension must be
 * the same with the reduced metadata as with the full "min" set.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { type MetadataJson, parsePhoneNumberFromString } from "libphonenumber-js/core";
import full from "libphonenumber-js/min/metadata";
import examples from "libphonenumber-js/mobile/examples";

const OUT = resolve(import.meta.dirname, "../src/model/phone-metadata.ts");
const VERSION = (createRequire(import.meta.url)("libphonenumber-js/package.json") as { version: string })
  .version;

/** Positions in a numbering plan array of the "min" metadata (libphonenumber-js metadata.js). */
const IDD_PREFIX = 1;
const FORMATS = 4;
const NATIONAL_PREFIX_FORMATTING_RULE = 6;
const NATIONAL_PREFIX_OPTIONAL_WHEN_FORMATTING = 9;
const TYPES = 11;
const DEFAULT_IDD_PREFIX = 12;
const EXTENSION_PREFIX = 13;

type Plan = unknown[];

/** Builds the reduced metadata from the full "min" set. */
/**
 * National lengths for which the countries sharing a calling code answer differently: where
 * one calls a number of that length possible and another not, or where one would let a
 * national prefix be stripped to that length and another not (the library strips it unless
 * the result is too short or of an invalid length). At any other length the answer is the
 * same whichever country is picked.
 */
function disputedLengths(plans: Plan[]): Set<number> {
  const out = new Set<number>();
  for (let length = 1; length <= 17; length++) {
    const answers = new Set(
      plans.map((plan) => {
        const lengths = (plan[3] ?? []) as number[];
        const possible = lengths.includes(length);
        return `${possible} ${possible || length > Math.max(...lengths)}`;
      }),
    );
    if (answers.size > 1) out.add(length);
  }
  return out;
}

/** Builds the reduced metadata from the full "min" set. */
export function reduce(source: MetadataJson): MetadataJson {
  const copy = structuredClone(source) as unknown as {
    country_calling_codes: Record<string, string[]>;
    countries: Record<string, Plan>;
    nonGeographic?: Record<string, Plan>;
  };
  const strip = (plan: Plan, disputed: Set<number>) => {
    plan[IDD_PREFIX] = 0;
    plan[FORMATS] = 0;
    plan[NATIONAL_PREFIX_FORMATTING_RULE] = 0;
    plan[NATIONAL_PREFIX_OPTIONAL_WHEN_FORMATTING] = 0;
    plan[DEFAULT_IDD_PREFIX] = 0;
    plan[EXTENSION_PREFIX] = 0;
    // A number type can pick the country only at its own lengths: keep it where those are disputed.
    const types = (plan[TYPES] || []) as ([string, number[]?] | 0)[];
    const kept = types.map((type) =>
      type !== 0 && (type[1] ?? (plan[3] as number[]) ?? []).some((l) => disputed.has(l)) ? type : 0,
    );
    while (kept.length > 0 && kept[kept.length - 1] === 0) kept.pop();
    plan[TYPES] = kept.length > 0 ? kept : 0;
    while (plan.length > 0 && plan[plan.length - 1] === 0) plan.pop();
  };
  for (const countries of Object.values(copy.country_calling_codes)) {
    const geographic = countries.filter((c) => c !== "001");
    const disputed = disputedLengths(geographic.map((c) => copy.countries[c]));
    for (const country of geographic) strip(copy.countries[country], disputed);
  }
  for (const plan of Object.values(copy.nonGeographic ?? {})) strip(plan, new Set());
  return copy as unknown as MetadataJson;
}

/** What the Worker takes from a parse: possible or not, the E.164 form, an extension. */
function outcome(text: string, metadata: MetadataJson): string {
  const parsed = parsePhoneNumberFromString(text, metadata);
  if (!parsed) return "none";
  return `${parsed.isPossible()} ${parsed.number} ${parsed.ext ?? ""}`;
}

/** Inputs: each country's example and variants of it, across all national lengths. */
function corpus(metadata: MetadataJson): string[] {
  const codes = metadata.country_calling_codes as Record<string, string[]>;
  const callingCode = new Map<string, string>();
  for (const [code, countries] of Object.entries(codes)) for (const c of countries) callingCode.set(c, code);
  const out: string[] = [];
  let seed = 7;
  const digit = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return String(seed % 10);
  };
  for (const [country, national] of Object.entries(examples as Record<string, string>)) {
    const code = callingCode.get(country);
    if (!code) continue;
    out.push(`+${code}${national}`, `+${code} ${national.slice(0, 3)} ${national.slice(3)}`);
    out.push(`+${code} (0) ${national}`, `+${code}0${national}`, `+${code}-${national}`);
    out.push(`+${code}${national} ext. 12`, `+${code} ${national.slice(0, 2)}-${national.slice(2)}`);
    for (let length = 1; length <= 17; length++) {
      let digits = national.slice(0, length);
      while (digits.length < length) digits += digit();
      out.push(
        `+${code}${digits}`,
        `+${code}0${digits}`,
        `+${code} ${digits.slice(0, 1)} ${digits.slice(1)}`,
      );
    }
  }
  // Where countries sharing a calling code differ in lengths, the type patterns pick the country.
  const plans = metadata.countries as unknown as Record<string, Plan>;
  for (const [code, countries] of Object.entries(codes)) {
    if (countries.length < 2) continue;
    for (const country of countries) {
      for (const type of (plans[country][TYPES] || []) as ([string, number[]?] | 0)[]) {
        if (!type) continue;
        const lead = /^\d+/.exec(type[0])?.[0] ?? "";
        for (const length of type[1] ?? (plans[country][3] as number[])) {
          let national = lead.slice(0, length);
          while (national.length < length) national += digit();
          out.push(`+${code}${national}`);
        }
      }
    }
  }
  for (const code of Object.keys(codes)) {
    for (let length = 4; length <= 14; length++) {
      let digits = "";
      for (let i = 0; i < length; i++) digits += digit();
      out.push(`+${code}${digits}`);
    }
  }
  return out;
}

/** Compares the reduced metadata with the full set on the corpus; returns the differences. */
export function differences(reduced: MetadataJson): string[] {
  const out: string[] = [];
  for (const text of corpus(full)) {
    const a = outcome(text, full);
    const b = outcome(text, reduced);
    if (a !== b) out.push(`${text}: full "${a}", reduced "${b}"`);
  }
  return out;
}

/**
 * The module text: biome-formatted, the metadata as JSON text parsed on first use (a cold
 * isolate that never sees a phone number never decodes it; JSON.parse is faster than an
 * object literal).
 */
function moduleText(metadata: MetadataJson): string {
  return [
    `// Generated by \`node tools/phone-metadata.ts\` from libphonenumber-js ${VERSION} "min" metadata. Do not edit.`,
    'import type { MetadataJson } from "libphonenumber-js/core";',
    "",
    "let decoded: MetadataJson | undefined;",
    "",
    "/** libphonenumber's metadata, reduced to what parsing an international number needs; decoded on first use. */",
    "export const phoneMetadata = (): MetadataJson =>",
    "  (decoded ??= JSON.parse(",
    `    '${JSON.stringify(metadata).replace(/\\/g, "\\\\").replace(/'/g, "\\'")}',`,
    "  ));",
    "",
  ].join("\n");
}

const check = process.argv.includes("--check");
const reduced = reduce(full);
const diffs = differences(reduced);
if (diffs.length > 0) {
  console.error(`the reduced metadata answers differently on ${diffs.length} inputs:`);
  for (const d of diffs.slice(0, 20)) console.error(`  ${d}`);
  process.exit(1);
}
const text = moduleText(reduced);
const inputs = corpus(full).length;
if (check) {
  let committed = "";
  try {
    committed = readFileSync(OUT, "utf8");
  } catch {
    // missing: stale
  }
  if (committed !== text) {
    console.error("src/model/phone-metadata.ts is stale: run `node tools/phone-metadata.ts`");
    process.exit(1);
  }
  console.log(
    `src/model/phone-metadata.ts is current (libphonenumber-js ${VERSION}; ${inputs} inputs checked)`,
  );
} else {
  writeFileSync(OUT, text);
  console.log(`wrote src/model/phone-metadata.ts (${text.length} bytes; ${inputs} inputs checked)`);
}
