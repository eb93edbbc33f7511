/**
 * The body of `PATCH /users/:email`: schema, normalization and the field errors
 * it produces. The same schema feeds `/openapi.json`.
 */
import * as z from "zod/mini";
import type { FieldError } from "../http/errors.ts";
import { FIELDS } from "../model/fields.ts";
import { checkPhone, INTERNATIONAL_FORMAT, type PhoneProblem } from "../model/phone.ts";

export const NAME_MAX = 100;
/** Largest request body read, in bytes; three 100-character names fit many times over. */
export const MAX_BODY_BYTES = 8 * 1024;

/** Control, line/paragraph separator and bidi-override characters are refused in names. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const FORBIDDEN_IN_NAME = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;
/**
 * Characters a reader cannot see. Default-ignorable code points (U+00AD, U+034F, U+061C,
 * U+115F/U+1160, U+180E, U+200B–U+200F, U+2060–U+206F, U+3164, U+FEFF, U+FFA0, tags, …) and
 * other format characters (`\p{Cf}`), except those that real names need: ZWNJ and ZWJ (U+200C,
 * U+200D: Persian, Indic scripts), variation selectors (U+FE00–U+FE0F, U+E0100–U+E01EF:
 * ideographic variants of CJK names) and Mongolian free variation selectors (U+180B–U+180D, U+180F).
 */
const INVISIBLE =
  /(?!\u200c|\u200d|[\ufe00-\ufe0f\u180b-\u180d\u180f\u{e0100}-\u{e01ef}])[\p{Default_Ignorable_Code_Point}\p{Cf}]/u;
/** Every invisible or default-ignorable character, allowed ones included: what is left must be text. */
const IGNORABLE = /[\p{Default_Ignorable_Code_Point}\p{Cf}\p{White_Space}]/gu;

/** Field messages that the OpenAPI examples repeat word for word. */
export const MESSAGES = {
  null: "null is not allowed; leave the field out to keep it.",
  notString: "Must be a string.",
  phoneFormat: "Must be a phone number in international format, such as +15555555555.",
} as const;

/** A string, with a message for `null` that says how to keep a field as it is. */
const text = () =>
  z.string({ error: (issue) => (issue.input === null ? MESSAGES.null : MESSAGES.notString) });

/** What is wrong with a number in international format that is not a possible one. */
export function phoneMessage(problem: PhoneProblem): string {
  if (problem.reason === "unknown-calling-code") {
    return "Must start with a known country calling code, such as +1 or +44.";
  }
  const plan = `+${problem.callingCode}${problem.country ? ` (${problem.country})` : ""} phone number`;
  if (problem.reason === "too-short") return `Too short for a ${plan}.`;
  if (problem.reason === "too-long") return `Too long for a ${plan}.`;
  return `Not a possible length for a ${plan}.`;
}

function buildChangeSchema() {
  const name = z.pipe(
    text(),
    z.transform((input: string, ctx) => {
      const value = input.normalize("NFC").trim();
      const length = [...value].length;
      let message: string | undefined;
      // A lone surrogate (`"\ud800"` is valid JSON) is not text: refuse it rather than forward it.
      if (!value.isWellFormed()) message = "Must be valid Unicode text.";
      else if (length < 1 || value.replace(IGNORABLE, "") === "") message = "Must not be empty.";
      else if (length > NAME_MAX) message = `Must be at most ${NAME_MAX} characters.`;
      else if (FORBIDDEN_IN_NAME.test(value)) message = "Must not contain control characters.";
      else if (INVISIBLE.test(value)) message = "Must not contain invisible characters.";
      if (message) {
        ctx.issues.push({ code: "custom", message, input });
        return z.NEVER;
      }
      return value;
    }),
  );

  const phone = z.pipe(
    text(),
    z.transform((input: string, ctx) => {
      const value = input.trim();
      const checked = INTERNATIONAL_FORMAT.test(value) ? checkPhone(value) : undefined;
      if (checked === undefined || !("e164" in checked)) {
        const message = checked ? phoneMessage(checked) : MESSAGES.phoneFormat;
        ctx.issues.push({ code: "custom", message, input });
        return z.NEVER;
      }
      return checked.e164;
    }),
  );

  return z
    .strictObject({
      first_name: z.optional(name),
      last_name: z.optional(name),
      phone_number: z.optional(phone),
    })
    .check(
      z.refine((o) => Object.keys(o).length > 0, {
        message: `At least one of ${FIELDS.join(", ")} is required.`,
      }),
    );
}

let built: ReturnType<typeof buildChangeSchema> | undefined;

/**
 * The change a caller may request. Strict: unknown keys are refused, never dropped. Built on
 * first use: a cold isolate whose first requests change no user never builds it.
 */
export const changeSchema = () => (built ??= buildChangeSchema());

export type Changes = z.output<ReturnType<typeof buildChangeSchema>>;

/** Turns zod issues into the `errors[]` of a validation problem. */
export function toFieldErrors(issues: readonly z.core.$ZodIssue[]): FieldError[] {
  const out: FieldError[] = [];
  for (const issue of issues) {
    const keys =
      issue.code === "unrecognized_keys" ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
    for (const path of keys) {
      const field = path.map(String).join(".");
      out.push({
        field,
        pointer: path.length
          ? `/${path.map((p) => String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("/")}`
          : "",
        detail:
          issue.code === "unrecognized_keys"
            ? "Unknown field; only first_name, last_name and phone_number can be changed."
            : issue.message,
      });
    }
  }
  return out;
}
