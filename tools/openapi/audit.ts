/**
 * The review API's part of the contract (tools/openapi/document.ts): `GET /audit`, `GET /audit/{id}`
 * and `GET /audit/records` (raw signed records for `npm run audit -- verify`).
 * Query parameters come from `auditQuerySchema()`, the schema that validates them; the entry
 * schemas below describe what the review API answers, and test/openapi.test.ts parses real
 * answers with them.
 */
import * as z from "zod/mini";
import { OUTCOMES, TOKEN_EVENTS } from "../../src/audit/store.ts";
import { AUDIT_VALUES } from "../../src/config.ts";
import { AUDITED_REASONS } from "../../src/http/reasons.ts";
import { FIELDS } from "../../src/model/fields.ts";

type Json = Record<string, unknown>;

const NDJSON = "application/x-ndjson";

const fields = z.array(z.enum(FIELDS));
const values = z.optional(
  z.object({
    first_name: z.optional(z.string()),
    last_name: z.optional(z.string()),
    phone_number: z.optional(z.string()),
  }),
);

/** What every entry starts with: which entry, when, which request, which caller. */
const entryHead = {
  id: z.string(),
  time: z.string(),
  request_id: z.string(),
  token_id: z.string(),
  token_name: z.string(),
};
/** What came of it. */
const entryOutcome = {
  outcome: z.enum(OUTCOMES),
  reason: z.optional(z.enum(AUDITED_REASONS)),
  over_budget: z.optional(z.literal(true)),
  upstream_status: z.optional(z.int()),
  latency_ms: z.optional(z.number()),
};

/** Token lifecycle entries: the action (token.create, token.rotate, token.revoke). */
const event = z.optional(z.enum(TOKEN_EVENTS));

/** One entry as `GET /audit` lists it (from key metadata, no value read). */
export const AuditSummarySchema = z.object({
  ...entryHead,
  email: z.optional(z.string()),
  fields,
  ip: z.optional(z.string()),
  origin: z.optional(z.string()),
  ...entryOutcome,
  event,
  target_id: z.optional(z.string()),
});

/** A page of `GET /audit`: `cursor` is null on the last page (also in `X-Next-Cursor`). */
export const AuditPageSchema = z.object({
  entries: z.array(AuditSummarySchema),
  cursor: z.nullable(z.string()),
});

/** One entry with everything stored about it, as `GET /audit/{id}` shows it. */
export const AuditDetailSchema = z.object({
  ...entryHead,
  origin: z.optional(z.string()),
  ip: z.optional(z.string()),
  user_agent: z.optional(z.string()),
  email: z.optional(z.string()),
  fields: z.optional(fields),
  values_mode: z.optional(z.enum(AUDIT_VALUES)),
  values,
  ...entryOutcome,
  outcome_time: z.optional(z.string()),
  kind: z.optional(z.literal("token")),
  event,
  /** Lifecycle entries: the token acted on (never its secret or hash). */
  target: z.optional(
    z.object({
      id: z.optional(z.string()),
      name: z.string(),
      scopes: z.array(z.string()),
      domains: z.optional(z.array(z.string())),
      origins: z.optional(z.array(z.string())),
      expires_at: z.optional(z.string()),
      previous_expires_at: z.optional(z.string()),
    }),
  ),
});

/** A page of `GET /audit/records`: records exactly as stored, MACs in their metadata. */
export const AuditRecordsPageSchema = z.object({
  records: z.array(
    z.object({
      key: z.string(),
      value: z.nullable(z.string()),
      metadata: z.nullable(z.record(z.string(), z.unknown())),
    }),
  ),
  cursor: z.nullable(z.string()),
});

const OUTCOME_TEXT =
  "`pending` (forwarded, no outcome yet), `unknown` (no outcome long after), Village's outcomes (`accepted`, `not_found`, `rejected_by_village`, `upstream_error`, `timeout`) and refusals (`denied`, `invalid`, `rate_limited`).";

/** The query parameters, one per property of the validating schema (input side). */
export function auditParameters(query: Json, email?: Json): Json[] {
  const properties = (query.properties ?? {}) as Record<string, Json>;
  const describe: Record<string, string> = {
    email: "Entries about this target address (compared normalized).",
    token:
      "Entries made with this token id (`tok_…`), signed-in user (`user:<subject>`) or operator (`operator:<name>`, the token CLI's direct KV path), and the lifecycle entries (created, rotated, revoked) of that token.",
    outcome: `Entries with this outcome: ${OUTCOME_TEXT}`,
    request_id: "Entries of this request id.",
    since: "Entries at or after this ISO 8601 date or date-time.",
    until: "Entries at or before this ISO 8601 date or date-time.",
    limit: "Most entries in the answer: 1 to 1000 (default 50 for JSON, 5000 for NDJSON).",
    cursor: "The `cursor` of the previous page, to get the next one.",
  };
  // Where the validator's string form hides the bounds it checks, say them as JSON Schema does.
  const exact: Record<string, Json> = {
    limit: { type: "integer", minimum: 1, maximum: 1000 },
    ...(email ? { email } : {}),
  };
  return Object.entries(properties).map(([name, schema]) => ({
    name,
    in: "query",
    required: false,
    description: describe[name] ?? name,
    schema: exact[name] ?? schema,
  }));
}

/** The path items, given the shared pieces of the document. */
export function auditPaths(
  parameters: Json[],
  ref: (name: string) => Json,
  problems: (status: number, description: string, headers?: Json, only?: string[]) => Json,
  REQUEST_ID: Json,
): Json {
  const security = [{ bearerToken: ["audit:read"] }];
  const refused = {
    "401": problems(401, "No bearer credentials, or no valid token.", {
      "WWW-Authenticate": { $ref: "#/components/headers/WWW-Authenticate" },
    }),
    "403": problems(403, "The token lacks the audit:read scope.", {
      "WWW-Authenticate": { $ref: "#/components/headers/WWW-Authenticate" },
    }),
    "429": problems(429, "Too many reviews from this caller in a minute.", {
      "Retry-After": { $ref: "#/components/headers/Retry-After" },
    }),
    "503": problems(503, "The audit trail is unavailable; try again later.", {
      "Retry-After": { $ref: "#/components/headers/Retry-After" },
    }),
  };
  return {
    "/audit": {
      get: {
        operationId: "listAudit",
        tags: ["audit"],
        summary: "Review the audit trail, newest first, filtered; JSON pages or an NDJSON export",
        description: `Field values are masked unless the operators configured otherwise; field names are always kept. With \`Accept: ${NDJSON}\` the answer is one entry per line (up to 5000), the next cursor in \`X-Next-Cursor\`. A page is filled by listing KV (each call at most the entries still wanted, at most 5 calls) until it is full or the trail is exhausted, filtering on each key's metadata: it may hold fewer entries than asked, even none, while \`cursor\` is not null. A token limited to email domains sees only entries whose target is in them; entries without a valid target are hidden from it. Reviews are rate-limited per caller (429 with \`Retry-After\`).`,
        security,
        parameters,
        responses: {
          "200": {
            description: "A page of entries.",
            headers: { "X-Request-Id": REQUEST_ID, "X-Next-Cursor": { schema: { type: "string" } } },
            content: {
              "application/json": { schema: ref("AuditPage") },
              [NDJSON]: { schema: { type: "string", description: "One AuditSummary JSON object per line." } },
            },
          },
          "400": problems(
            400,
            "A query parameter is not valid, or the credential was not sent as one Authorization: Bearer header.",
          ),
          ...refused,
        },
      },
    },
    "/audit/records": {
      get: {
        operationId: "auditRecords",
        tags: ["audit"],
        summary: "Raw signed audit records, for npm run audit -- verify",
        description:
          "Records as stored (MACs in metadata): `prefix` (and `cursor`) lists up to 1000, or `key` (up to 100 times) reads those.",
        security,
        parameters: [
          {
            name: "prefix",
            in: "query",
            required: false,
            description: "Key prefix, e.g. `entry:`.",
            schema: { type: "string", maxLength: 512 },
          },
          {
            name: "cursor",
            in: "query",
            required: false,
            description: "The previous page's `cursor`.",
            schema: { type: "string", maxLength: 2048 },
          },
          {
            name: "key",
            in: "query",
            required: false,
            description: "A key to read, up to 100 times.",
            schema: { type: "array", items: { type: "string", maxLength: 512 }, maxItems: 100 },
            style: "form",
            explode: true,
          },
        ],
        responses: {
          "200": {
            description: "Records; null value and metadata for a missing key.",
            headers: { "X-Request-Id": REQUEST_ID },
            content: { "application/json": { schema: ref("AuditRecordsPage") } },
          },
          "400": problems(400, "Not exactly one of prefix and key, or a bad parameter."),
          ...refused,
        },
      },
    },
    "/audit/{id}": {
      get: {
        operationId: "showAudit",
        tags: ["audit"],
        summary: "One audit entry with its outcome",
        security,
        parameters: [
          {
            name: "id",
            in: "path",
            required: true,
            description: "The entry's id, as listed (not the request id).",
            schema: { type: "string" },
          },
        ],
        responses: {
          "200": {
            description: "The entry.",
            headers: { "X-Request-Id": REQUEST_ID },
            content: { "application/json": { schema: ref("AuditDetail") } },
          },
          "400": problems(400, "The credential was not sent as one Authorization: Bearer header.", {}, [
            "token-in-query",
            "malformed-authorization",
          ]),
          "404": problems(404, "No entry has this id (or none this token may see: domain limits)."),
          ...refused,
        },
      },
    },
  };
}
