/**
 * Examples published in the contract (tools/openapi/document.ts). Each is a real exchange:
 * test/openapi.test.ts sends the request each one stands for and compares the answer
 * (all but the per-request `instance` / `request_id`).
 */

import { type FieldError, type ProblemType, problemCatalog, problemTypeUri } from "../../src/http/errors.ts";
import { MAX_BODY_BYTES, MESSAGES } from "../../src/users/changes.ts";

/** The request id shown in examples. */
export const EXAMPLE_REQUEST_ID = "3f2c8a5e-9b1d-4c7e-8f60-2a4b6c8d0e1f";

export interface Example<T> {
  name: string;
  summary: string;
  value: T;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errors?: FieldError[];
}

export type ProblemExample = Example<ProblemBody>;

function problem(name: string, summary: string, type: ProblemType, detail: string, errors?: FieldError[]) {
  const entry = problemCatalog().find((p) => p.type === type);
  if (!entry) throw new Error(`unknown problem type ${type}`);
  const value: ProblemBody = {
    type: problemTypeUri(type),
    title: entry.title,
    status: entry.status,
    detail,
    instance: EXAMPLE_REQUEST_ID,
  };
  if (errors) value.errors = errors;
  return { name, summary, value };
}

/** Request bodies for `PATCH /users/ada@example.com`, each answered by the same-named 202 below. */
export const CHANGE_EXAMPLES: Example<Record<string, string>>[] = [
  {
    name: "all-fields",
    summary: "Change all three fields",
    value: { first_name: "Ada", last_name: "Lovelace", phone_number: "+44 20 7123 4567" },
  },
  {
    name: "last-name",
    summary: "Change one name (trimmed before it is sent)",
    value: { last_name: "  King " },
  },
  { name: "phone", summary: "Change the phone number", value: { phone_number: "+1 (202) 555-0143" } },
];

export const ACCEPTED_EXAMPLES: Example<Record<string, unknown>>[] = [
  {
    name: "all-fields",
    summary: "All three fields, the phone number in E.164 form",
    value: {
      status: "accepted",
      request_id: EXAMPLE_REQUEST_ID,
      email: "ada@example.com",
      changes: { first_name: "Ada", last_name: "Lovelace", phone_number: "+442071234567" },
    },
  },
  {
    name: "last-name",
    summary: "One name, trimmed",
    value: {
      status: "accepted",
      request_id: EXAMPLE_REQUEST_ID,
      email: "ada@example.com",
      changes: { last_name: "King" },
    },
  },
  {
    name: "phone",
    summary: "The phone number in E.164 form",
    value: {
      status: "accepted",
      request_id: EXAMPLE_REQUEST_ID,
      email: "ada@example.com",
      changes: { phone_number: "+12025550143" },
    },
  },
];

const FIELDS_ONLY = "Unknown field; only first_name, last_name and phone_number can be changed.";

/** Every way `PATCH /users/{email}` can fail, by name. */
export const PROBLEM_EXAMPLES: ProblemExample[] = [
  problem(
    "token-in-query",
    "A token in the query string",
    "invalid-request",
    "Tokens are accepted only in the Authorization header.",
  ),
  problem(
    "malformed-authorization",
    "A Bearer header that is not one well-formed credential",
    "invalid-request",
    "The Authorization header must be a single `Bearer <token>` credential.",
  ),
  problem(
    "invalid-email",
    "An email in the path that is not an address",
    "invalid-email",
    "The email must look like name@example.com.",
  ),
  problem("malformed-json", "A body that is not JSON", "malformed-json", "The body is not valid JSON."),
  problem(
    "phone-format",
    "A phone number not in international format",
    "validation-failed",
    "The change is not valid.",
    [{ field: "phone_number", pointer: "/phone_number", detail: MESSAGES.phoneFormat }],
  ),
  problem(
    "phone-too-short",
    "A phone number too short for its country",
    "validation-failed",
    "The change is not valid.",
    [{ field: "phone_number", pointer: "/phone_number", detail: "Too short for a +44 (GB) phone number." }],
  ),
  problem(
    "phone-too-long",
    "A phone number too long for its country",
    "validation-failed",
    "The change is not valid.",
    [{ field: "phone_number", pointer: "/phone_number", detail: "Too long for a +1 (US) phone number." }],
  ),
  problem("null-field", "A field set to null", "validation-failed", "The change is not valid.", [
    { field: "last_name", pointer: "/last_name", detail: MESSAGES.null },
  ]),
  problem(
    "unknown-field",
    "A field that cannot be changed",
    "validation-failed",
    "The change is not valid.",
    [{ field: "email", pointer: "/email", detail: FIELDS_ONLY }],
  ),
  problem("empty-change", "An empty change", "validation-failed", "The change is not valid.", [
    { field: "", pointer: "", detail: "At least one of first_name, last_name, phone_number is required." },
  ]),
  problem("missing-token", "No token", "unauthorized", "A bearer token is required."),
  problem(
    "other-scheme",
    "Credentials of another scheme (Basic): no bearer credentials, a plain challenge",
    "unauthorized",
    "A bearer token is required.",
  ),
  problem(
    "invalid-token",
    "An unknown, expired or revoked token",
    "unauthorized",
    "The bearer token is invalid, expired or revoked.",
  ),
  problem(
    "no-users-scope",
    "A token without a users:write scope",
    "forbidden",
    "This token cannot change users.",
  ),
  problem(
    "field-not-allowed",
    "A token limited to other fields",
    "forbidden",
    "This token may not change phone_number; the whole change was refused.",
  ),
  problem(
    "domain-not-allowed",
    "A token limited to other email domains",
    "forbidden",
    "This token may not change users in this email domain.",
  ),
  problem(
    "user-not-found",
    "Village has no such user",
    "user-not-found",
    "Village has no user with this email in the network.",
  ),
  problem(
    "too-large",
    "A body over the limit",
    "payload-too-large",
    `The body must be at most ${MAX_BODY_BYTES} bytes.`,
  ),
  problem(
    "not-json",
    "A body that is not application/json",
    "unsupported-media-type",
    "The body must be application/json.",
  ),
  problem(
    "village-rejected",
    "Village answered 400 or 422",
    "village-rejected",
    "Village rejected the change.",
  ),
  problem("misconfigured", "A missing or invalid binding", "internal", "The service is misconfigured."),
  problem(
    "caller-rate-limited",
    "Too many changes from this token or signed-in user",
    "rate-limited",
    "Too many changes from this caller; retry later.",
  ),
  problem(
    "phone-rate-limited",
    "Too many phone changes for this user",
    "rate-limited",
    "This user's phone number was changed too often; retry later.",
  ),
  problem(
    "village-failed",
    "Village answered 5xx (502, 503 and 504 after one retry), a redirect, or refused our key",
    "bad-gateway",
    "Village could not take the change; try again later.",
  ),
  problem(
    "token-store-down",
    "The token store failed",
    "service-unavailable",
    "Token verification is unavailable; try again later.",
  ),
  problem(
    "village-timeout",
    "Village did not answer in time",
    "gateway-timeout",
    "Village did not answer in time; the change may or may not apply.",
  ),
  problem(
    "caller-rate-limited",
    "Too many changes from this token (or signed-in user) in a minute",
    "rate-limited",
    "Too many changes from this caller; retry later.",
  ),
  problem(
    "phone-rate-limited",
    "Too many phone changes for this user in a minute",
    "rate-limited",
    "This user's phone number was changed too often; retry later.",
  ),
];

/** Problems of the review API. */
export const AUDIT_EXAMPLES: ProblemExample[] = [
  problem(
    "audit-bad-query",
    "A query parameter that is not valid",
    "invalid-request",
    "The audit query is not valid.",
    [
      {
        field: "outcome",
        pointer: "",
        detail:
          "Must be one of pending, unknown, accepted, not_found, rejected_by_village, upstream_error, timeout, denied, invalid, rate_limited.",
      },
    ],
  ),
  problem("audit-missing-token", "No token", "unauthorized", "A bearer token is required."),
  problem(
    "audit-rate-limited",
    "Too many reviews from this token in a minute",
    "rate-limited",
    "Too many reviews from this caller; retry later.",
  ),
  problem(
    "audit-no-scope",
    "A token without audit:read",
    "forbidden",
    "This token lacks the audit:read scope.",
  ),
  problem(
    "audit-entry-not-found",
    "No entry has this id",
    "not-found",
    "No audit entry has this id. To find entries by request id, use GET /audit?request_id=...",
  ),
  problem(
    "audit-store-down",
    "The audit store failed",
    "service-unavailable",
    "The audit trail is unavailable; try again later.",
  ),
];

/** A CORS preflight from an origin that is not allowed. */
export const PREFLIGHT_EXAMPLES: ProblemExample[] = [
  problem(
    "preflight-origin-refused",
    "An origin not in ALLOWED_ORIGINS",
    "forbidden",
    "This origin may not call this service from a browser.",
  ),
];

/** Problems of any documented path: a method the path does not serve. */
export const ROUTE_EXAMPLES: ProblemExample[] = [
  problem(
    "method-not-allowed",
    "GET /users/{email}",
    "method-not-allowed",
    "This path accepts PATCH, OPTIONS.",
  ),
];

/** Any operation: a missing or invalid binding (the same answer as `misconfigured`). */
export const INTERNAL_EXAMPLE: ProblemExample = problem(
  "misconfigured",
  "A missing or invalid binding",
  "internal",
  "The service is misconfigured.",
);

/**
 * A path the document does not list: not an operation, so the document says it in its
 * description; test/openapi.test.ts checks the answer.
 */
export const NOT_FOUND_EXAMPLE: ProblemExample = problem(
  "not-found",
  "Any path this service does not serve",
  "not-found",
  "No such route.",
);

/** Problems of the token management API (`/tokens`, TOKEN_ADMIN on unless said). */
export const TOKEN_EXAMPLES: ProblemExample[] = [
  problem("tokens-off", "TOKEN_ADMIN is off (the default)", "not-found", "No such route."),
  problem(
    "tokens-escalation",
    "Creating a token holding tokens:admin",
    "forbidden",
    "A token made over HTTP may not hold tokens:admin; only the token CLI's direct KV path makes one.",
  ),
  problem(
    "tokens-admin-target",
    "Rotating or revoking a token holding tokens:admin",
    "forbidden",
    "Tokens holding tokens:admin are made and managed only by the token CLI's direct KV path.",
  ),
  problem("tokens-invalid-body", "An unknown field", "validation-failed", "The request body is not valid.", [
    { field: "hash", pointer: "/hash", detail: "Unknown field." },
  ]),
  problem("token-not-found", "No token has this id", "not-found", "No token has this id."),
];
