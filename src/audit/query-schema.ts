/**
 * The query of `GET /audit` and its media types: the schema the route validates with and the
 * contract (tools/openapi/document.ts) publishes, and the check itself ({@link parseAuditQuery}:
 * our own ten lines instead of `@hono/zod-validator`, which would cost 0.8 KiB gzip of the
 * bundle budget, measured with `npm run size`, for one query).
 */
import * as z from "zod/mini";
import { type FieldError, ProblemError } from "../http/errors.ts";
import { WELL_FORMED as REQUEST_ID } from "../http/request-id.ts";
import { normalizeEmail } from "../model/email.ts";
import { OUTCOMES } from "./store.ts";

/** The media type of the export. */
export const NDJSON = "application/x-ndjson";

/** The query parameters of `GET /audit`. */
const PARAMS = ["email", "token", "outcome", "request_id", "since", "until", "limit", "cursor"];

function buildQueryParts() {
  return {
    /** An ISO 8601 date or date-time query value, as epoch ms (also the token list's `expiring`). */
    time: z.pipe(
      z.union(
        [z.iso.datetime({ offset: true }), z.iso.date()],
        "Must be an ISO 8601 date (2026-01-31) or date-time (2026-01-31T12:00:00Z).",
      ),
      z.transform((s: string) => Date.parse(s)),
    ),
    /** A page size query value, 1 to 1000 (also the token list's). */
    limit: z.pipe(
      z.string().check(z.regex(/^[0-9]{1,4}$/, "Must be a whole number.")),
      z.pipe(
        z.transform(Number),
        z.number().check(z.minimum(1, "Must be from 1 to 1000."), z.maximum(1000, "Must be from 1 to 1000.")),
      ),
    ),
  };
}

let parts: ReturnType<typeof buildQueryParts> | undefined;

/**
 * The query values `GET /audit` and `GET /tokens` share (`time`, `limit`). Built on first use,
 * like every schema here: a cold isolate serving a change never builds them.
 */
export const queryParts = () => (parts ??= buildQueryParts());

function buildAuditQuerySchema() {
  const { time, limit } = queryParts();
  const email = z.pipe(
    z.string(),
    z.transform((input: string, ctx) => {
      try {
        return normalizeEmail(input).address;
      } catch (err) {
        ctx.issues.push({
          code: "custom",
          message: err instanceof ProblemError ? err.detail : "Invalid email.",
          input,
        });
        return z.NEVER;
      }
    }),
  );

  return z
    .strictObject({
      email: z.optional(email),
      token: z.optional(
        z
          .string()
          .check(
            z.regex(
              /^(tok_[0-9a-f]{16}|user:[A-Za-z0-9%._~!*'()-]{1,155}|operator:[A-Za-z0-9._-]{1,64})$/,
              "Must be a token id (tok_ and 16 hex), user:<subject> or operator:<name>.",
            ),
          ),
      ),
      outcome: z.optional(z.enum(OUTCOMES, `Must be one of ${OUTCOMES.join(", ")}.`)),
      request_id: z.optional(z.string().check(z.regex(REQUEST_ID, "Must be a request id."))),
      since: z.optional(time),
      until: z.optional(time),
      limit: z.optional(limit),
      cursor: z.optional(
        z.string().check(z.minLength(1, "Must not be empty."), z.maxLength(2048, "Is not a cursor.")),
      ),
    })
    .check(
      z.refine((q) => q.since === undefined || q.until === undefined || q.since <= q.until, {
        message: "since must not be after until.",
        path: ["since"],
      }),
    );
}

let built: ReturnType<typeof buildAuditQuerySchema> | undefined;

/**
 * The query of `GET /audit` (also for /openapi.json). Strict: a mistyped filter is an error,
 * never "no filter". Built on first use: most isolates never serve a review.
 */
export const auditQuerySchema = () => (built ??= buildAuditQuerySchema());

/** Turns the query schema's issues into the problem's `errors[]`. */
function queryErrors(issues: readonly z.core.$ZodIssue[]): FieldError[] {
  return issues.map((issue) =>
    issue.code === "unrecognized_keys"
      ? {
          field: "",
          pointer: "",
          detail: `Unknown query parameter; the parameters are ${PARAMS.join(", ")}.`,
        }
      : { field: issue.path.join("."), pointer: "", detail: issue.message },
  );
}

/**
 * Validates the query of `GET /audit` (every value of each parameter, as `c.req.queries()`
 * gives them): a parameter given twice, or any schema issue, is a 400 `invalid-request`
 * with `errors[]`. Plain `safeParse` rather than `@hono/zod-validator`: the middleware would
 * bring Hono's validator, cookie and body helpers (about 2.4 KB minified) for one query.
 */
export function parseAuditQuery(
  queries: Record<string, string[]>,
): z.output<ReturnType<typeof buildAuditQuerySchema>> {
  const repeated = Object.entries(queries)
    .filter(([name, values]) => values.length > 1 && PARAMS.includes(name))
    .map(([name]) => ({ field: name, pointer: "", detail: "Give this parameter once." }));
  const result = auditQuerySchema().safeParse(
    Object.fromEntries(Object.entries(queries).map(([k, v]) => [k, v.length === 1 ? v[0] : v])),
  );
  if (repeated.length > 0 || !result.success) {
    throw new ProblemError("invalid-request", "The audit query is not valid.", {
      errors: repeated.length > 0 ? repeated : queryErrors(result.success ? [] : result.error.issues),
    });
  }
  return result.data;
}
