/**
 * The review API (scope `audit:read`): `GET /audit` lists and filters the trail newest first,
 * as JSON pages or as an NDJSON export; `GET /audit/:id` shows one entry with its outcome.
 * Reviews are not themselves audited (they change nothing); they are in the request logs.
 */
import { zValidator } from "@hono/zod-validator";
import { Hono } from "hono";
import * as z from "zod/mini";
import { bearerAuth, requireScope } from "../auth/authenticate.ts";
import type { AppEnv } from "../http/context.ts";
import { type FieldError, ProblemError } from "../http/errors.ts";
import { WELL_FORMED as REQUEST_ID } from "../http/request-id.ts";
import { respond, respondJson } from "../http/respond.ts";
import { normalizeEmail } from "../users/email.ts";
import { type AuditQuery, queryAudit } from "./query.ts";
import { OUTCOMES, readEntry } from "./store.ts";

/** Entries per JSON page unless `limit` says otherwise (at most 1000, KV's page size). */
const DEFAULT_LIMIT = 50;
/** `list()` calls one JSON page may make before it answers with what it found. */
const PAGE_MAX_LIST_CALLS = 5;
/**
 * One NDJSON export invocation: at most this many entries and `list()` calls (plus one bulk
 * read per 100 open intents), far below the 1000 KV operations a Worker invocation may make
 * and small enough for the CPU limit. The next cursor is in `X-Next-Cursor`.
 */
const EXPORT_MAX_ENTRIES = 5000;
const EXPORT_MAX_LIST_CALLS = 5;
export const NDJSON = "application/x-ndjson";

const PARAMS = ["email", "token", "outcome", "request_id", "since", "until", "limit", "cursor"];

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

const time = z.pipe(
  z.union(
    [z.iso.datetime({ offset: true }), z.iso.date()],
    "Must be an ISO 8601 date (2026-01-31) or date-time (2026-01-31T12:00:00Z).",
  ),
  z.transform((s: string) => Date.parse(s)),
);

const limit = z.pipe(
  z.string().check(z.regex(/^[0-9]{1,4}$/, "Must be a whole number.")),
  z.pipe(
    z.transform(Number),
    z.number().check(z.minimum(1, "Must be from 1 to 1000."), z.maximum(1000, "Must be from 1 to 1000.")),
  ),
);

/**
 * The query of `GET /audit` (exported for /openapi.json). Strict: a mistyped filter is an
 * error, never "no filter".
 */
export const AuditQuerySchema = z
  .strictObject({
    email: z.optional(email),
    token: z.optional(
      z
        .string()
        .check(
          z.regex(
            /^(tok_[0-9a-f]{16}|user:[A-Za-z0-9%._~!*'()-]{1,155})$/,
            "Must be a token id (tok_ and 16 hex) or user:<subject>.",
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

const unavailable = (err: unknown) =>
  new ProblemError("service-unavailable", "The audit trail is unavailable; try again later.", {
    headers: { "Retry-After": "5" },
    logDetail: `audit read failed: ${String(err)}`,
  });

export const audit = new Hono<AppEnv>();

audit.get(
  "/",
  bearerAuth(),
  requireScope("audit:read"),
  zValidator("query", AuditQuerySchema, (result, c) => {
    const repeated = Object.entries(c.req.queries())
      .filter(([name, values]) => values.length > 1 && PARAMS.includes(name))
      .map(([name]) => ({ field: name, pointer: "", detail: "Give this parameter once." }));
    if (repeated.length > 0 || !result.success) {
      throw new ProblemError("invalid-request", "The audit query is not valid.", {
        errors: repeated.length > 0 ? repeated : queryErrors(result.success ? [] : result.error.issues),
      });
    }
  }),
  async function listAudit(c) {
    const params = c.req.valid("query");
    const q: AuditQuery = {
      email: params.email,
      token: params.token,
      outcome: params.outcome,
      requestId: params.request_id,
      since: params.since,
      until: params.until,
      cursor: params.cursor,
    };
    const ndjson = (c.req.header("Accept") ?? "").toLowerCase().includes(NDJSON);
    const limits = ndjson
      ? { maxEntries: params.limit ?? EXPORT_MAX_ENTRIES, maxListCalls: EXPORT_MAX_LIST_CALLS }
      : { maxEntries: params.limit ?? DEFAULT_LIMIT, maxListCalls: PAGE_MAX_LIST_CALLS };
    let page: Awaited<ReturnType<typeof queryAudit>>;
    try {
      page = await queryAudit(c.env.AUDIT, q, limits);
    } catch (err) {
      throw unavailable(err);
    }
    const headers: Record<string, string> = { Vary: "Accept" };
    if (page.cursor !== null) headers["X-Next-Cursor"] = page.cursor;
    return ndjson
      ? respond(c, page.entries.map((e) => `${JSON.stringify(e)}\n`).join(""), 200, {
          ...headers,
          "Content-Type": NDJSON,
        })
      : respondJson(c, page, 200, headers);
  },
);

audit.get("/:id", bearerAuth(), requireScope("audit:read"), async function showAudit(c) {
  let entry: Awaited<ReturnType<typeof readEntry>>;
  try {
    entry = await readEntry(c.env.AUDIT, c.req.param("id"));
  } catch (err) {
    throw unavailable(err);
  }
  if (!entry) {
    throw new ProblemError(
      "not-found",
      "No audit entry has this id. To find entries by request id, use GET /audit?request_id=...",
    );
  }
  return respondJson(c, entry);
});
