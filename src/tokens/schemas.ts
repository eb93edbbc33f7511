/**
 * What the token management API accepts (exported for /openapi.json): the create and rotate
 * bodies and the list query. Strict: an unknown field or parameter is an error, never ignored.
 * The record's own rules (domain and origin shapes, expiry, admin rules) are `buildRecord`'s.
 */
import * as z from "zod/mini";
import { queryParts } from "../audit/query-schema.ts";
import { MAX_OVERLAP_S, SCOPES } from "../auth/tokens.ts";
import type { FieldError } from "../http/errors.ts";

/** Most domains or origins one token may list. */
export const MAX_LIST = 20;
/** Largest create body read. */
export const MAX_TOKEN_BODY_BYTES = 8192;

// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const NO_CONTROL = /^[^\u0000-\u001f\u007f-\u009f]*$/;

function buildTokenSchemas() {
  const { time, limit } = queryParts();
  /** `POST /tokens`. */
  const create = z.strictObject({
    name: z
      .string()
      .check(
        z.minLength(1, "Must not be empty."),
        z.maxLength(100, "Must be at most 100 characters."),
        z.regex(NO_CONTROL, "Must not contain control characters."),
      ),
    scopes: z
      .array(z.enum(SCOPES, `Must be one of ${SCOPES.join(", ")}.`))
      .check(z.minLength(1, "Must hold at least one scope."), z.maxLength(SCOPES.length)),
    domains: z.optional(z.array(z.string().check(z.maxLength(255))).check(z.maxLength(MAX_LIST))),
    origins: z.optional(z.array(z.string().check(z.maxLength(255))).check(z.maxLength(MAX_LIST))),
    expires_at: z.optional(
      z
        .string()
        .check(
          z.refine(
            (s) => /^\d{4}-\d\d-\d\dT/.test(s) && !Number.isNaN(Date.parse(s)),
            "Must be an ISO 8601 date-time.",
          ),
        ),
    ),
  });

  /** `POST /tokens/{id}/rotate`: how long the old secret keeps working, in seconds. */
  const rotate = z.strictObject({
    overlap_seconds: z.optional(
      z
        .number("Must be a whole number of seconds.")
        .check(
          z.refine(
            (n) => Number.isInteger(n) && n >= 0 && n <= MAX_OVERLAP_S,
            `Must be a whole number of seconds from 0 to ${MAX_OVERLAP_S}.`,
          ),
        ),
    ),
  });

  /** `GET /tokens`. */
  const listQuery = z.strictObject({
    revoked: z.optional(z.enum(["true", "false"], "Must be true or false.")),
    expiring: z.optional(time),
    limit: z.optional(limit),
    cursor: z.optional(
      z.string().check(z.minLength(1, "Must not be empty."), z.maxLength(2048, "Is not a cursor.")),
    ),
  });
  return { create, rotate, listQuery };
}

let built: ReturnType<typeof buildTokenSchemas> | undefined;

/**
 * The create and rotate bodies and the list query, built on first use (also for
 * /openapi.json): most isolates never serve a token operation, and zod's first schema pays
 * zod's own set-up too (docs/performance.md).
 */
export const tokenSchemas = () => (built ??= buildTokenSchemas());
export type CreateToken = z.infer<ReturnType<typeof tokenSchemas>["create"]>;

/** Field errors of a failed parse, unknown keys named one by one. */
export function fieldErrors(issues: readonly z.core.$ZodIssue[], where: "body" | "query"): FieldError[] {
  return issues.flatMap((issue) => {
    const paths =
      issue.code === "unrecognized_keys" ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
    return paths.map((path) => ({
      field: path.map(String).join("."),
      pointer:
        where === "body" && path.length
          ? `/${path.map((p) => String(p).replace(/~/g, "~0").replace(/\//g, "~1")).join("/")}`
          : "",
      detail:
        issue.code === "unrecognized_keys"
          ? `Unknown ${where === "body" ? "field" : "parameter"}.`
          : issue.message,
    }));
  });
}
