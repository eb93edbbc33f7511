/**
 * The phone check is a port of libphonenumber-js (src/model/phone.ts) on reduced metadata
 * (src/model/phone-metadata.ts). Here the library itself, with its whole "min" metadata, is the oracle:
 * for every input the schema lets through, the port must accept exactly what the library calls
 * possible, with the same E.164 form.
 */
import fc from "fast-check";
import { parsePhoneNumberFromString, validatePhoneNumberLength } from "libphonenumber-js/min";
import metadata from "libphonenumber-js/min/metadata";
import examples from "libphonenumber-js/mobile/examples";
import { describe, expect, it } from "vitest";
import { callingCodeOf, checkPhone, INTERNATIONAL_FORMAT, possibleE164 } from "../src/model/phone.ts";

/** What the library answers for text in international format: the E.164 form when possible. */
function oracle(text: string): string | undefined {
  const parsed = parsePhoneNumberFromString(text);
  if (!parsed?.isPossible() || parsed.ext) return undefined;
  return parsed.number;
}

const callingCodes = Object.keys(metadata.country_calling_codes);
const countryCode = new Map<string, string>();
for (const [code, countries] of Object.entries(metadata.country_calling_codes)) {
  for (const country of countries) countryCode.set(country, code);
}

/** Every country's example mobile number, written in the ways people write them. */
function writtenForms(): string[] {
  const out: string[] = [];
  for (const [country, national] of Object.entries(examples as Record<string, string>)) {
    const code = countryCode.get(country);
    if (!code) continue;
    const head = national.slice(0, 3);
    const tail = national.slice(3);
    out.push(
      `+${code}${national}`,
      `+${code} ${national}`,
      `+${code} ${head} ${tail}`,
      `+${code}-${head}-${tail}`,
      `+${code}.${head}.${tail}`,
      `+${code} (${head}) ${tail}`,
      `+${code} (0) ${national}`,
      `+${code}0${national}`,
      `+${code}${national.slice(0, -1)}`,
      `+${code}${national}0`,
      `+${code}${national}00`,
    );
  }
  return out.filter((t) => INTERNATIONAL_FORMAT.test(t));
}

/**
 * Where countries sharing a calling code differ in possible lengths, the country picked by
 * number type decides the answer: numbers built from each type pattern's leading digits, at
 * each of its lengths, exercise that.
 */
function typeDriven(): string[] {
  const out: string[] = [];
  let seed = 11;
  const digit = () => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return String(seed % 10);
  };
  const plans = metadata.countries as unknown as Record<string, unknown[]>;
  for (const [code, countries] of Object.entries(metadata.country_calling_codes)) {
    if (countries.length < 2) continue;
    for (const country of countries) {
      const plan = plans[country];
      const types = (plan[11] || []) as ([string, number[]?] | 0)[];
      for (const type of types) {
        if (!type) continue;
        const lead = /^\d+/.exec(type[0])?.[0] ?? "";
        for (const length of type[1] ?? (plan[3] as number[])) {
          for (let sample = 0; sample < 4; sample++) {
            let national = lead.slice(0, length);
            while (national.length < length) national += digit();
            out.push(`+${code}${national}`);
          }
        }
      }
    }
  }
  return out;
}

const agree = (text: string) => expect(possibleE164(text), text).toBe(oracle(text));

describe("the phone check answers as libphonenumber-js does", () => {
  it("for every country's example number in many written forms", () => {
    const forms = writtenForms();
    expect(forms.length).toBeGreaterThan(2000);
    let possible = 0;
    for (const text of forms) {
      agree(text);
      if (oracle(text)) possible++;
    }
    // The corpus must exercise both answers, or it proves nothing.
    expect(possible).toBeGreaterThan(forms.length / 4);
    expect(possible).toBeLessThan(forms.length);
  });

  it("where the country picked by number type decides (shared calling codes)", () => {
    const numbers = typeDriven();
    expect(numbers.length).toBeGreaterThan(500);
    for (const text of numbers) agree(text);
  });

  it("for every calling code followed by 0 to 17 random digits, with a national prefix or not", () => {
    const input = fc
      .tuple(
        fc.constantFrom(...callingCodes),
        fc.constantFrom("", "0", " (0) ", "8", " "),
        fc.stringMatching(/^[0-9]{0,17}$/),
      )
      .map(([code, middle, digits]) => `+${code}${middle}${digits}`)
      .filter((t) => INTERNATIONAL_FORMAT.test(t));
    fc.assert(
      fc.property(input, (text) => possibleE164(text) === oracle(text)),
      { numRuns: 20_000 },
    );
  });

  it("for any text of the allowed characters", () => {
    const input = fc.stringMatching(/^\+[0-9 ().-]{4,30}$/);
    fc.assert(
      fc.property(input, (text) => possibleE164(text) === oracle(text)),
      { numRuns: 20_000 },
    );
  });

  it("says why a number is not possible as the library's validatePhoneNumberLength does", () => {
    const reasons = { TOO_SHORT: "too-short", TOO_LONG: "too-long", INVALID_LENGTH: "invalid-length" };
    const texts = [...writtenForms(), ...typeDriven()];
    let compared = 0;
    for (const text of texts) {
      const library = validatePhoneNumberLength(text);
      const checked = checkPhone(text);
      if (!library || !(library in reasons) || "e164" in checked) continue;
      compared++;
      expect(checked.reason, text).toBe(reasons[library as keyof typeof reasons]);
    }
    expect(compared).toBeGreaterThan(500);
  });

  it("reads the calling code as the library does (the audit trail keeps it when masking)", () => {
    for (const text of writtenForms()) {
      const parsed = parsePhoneNumberFromString(text);
      if (parsed) expect(callingCodeOf(text), text).toBe(parsed.countryCallingCode);
    }
  });

  it("normalizes to E.164 and refuses what is not possible", () => {
    expect(possibleE164("+44 20 7123 4567")).toBe("+442071234567");
    expect(possibleE164("+44 (0) 20 7123 4567")).toBe("+442071234567");
    expect(possibleE164("+1 (202) 555-0143")).toBe("+12025550143");
    expect(possibleE164("+1 202 555 014")).toBeUndefined();
    expect(possibleE164("+0 202 555 0143")).toBeUndefined();
    expect(possibleE164("+999 1234 5678")).toBeUndefined();
    // Canada's 7-digit 310 numbers: possible only because the number type picks Canada.
    expect(possibleE164("+1 310 1234")).toBe(oracle("+1 310 1234"));
  });
});
