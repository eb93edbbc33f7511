/**
 * Why a request was refused: one vocabulary for the audit trail (`reason`), the log lines
 * (`reason`), the review API, the CLIs and the OpenAPI document (docs/problems.md lists them).
 * The problem type says what the caller got; the reason says exactly why.
 */
/** Every refusal reason, with the outcome a reviewer sees for it. */
export const REFUSAL_REASONS = {
  /** No bearer credential, another scheme, or an unknown, malformed, expired or revoked token. */
  unauthenticated: "denied",
  /** The Authorization header is not one bearer credential, or a token was put in the query. */
  invalid_request: "invalid",
  /** A signed-in user's JWT carries no verified email. */
  unverified_email: "denied",
  /** The caller is over its limit (changes or reviews). */
  rate_limited: "rate_limited",
  /** This user's phone number changed too often lately. */
  phone_rate_limited: "rate_limited",
  /** An origin-bound token without its origin. */
  origin: "denied",
  /** A server token (no origins) presented by a browser (`Origin` sent). */
  server_token_from_browser: "denied",
  /** The token lacks the scope the operation needs (`users:write…`, `audit:read`). */
  scope: "denied",
  /** The token may not write one of the fields of the change. */
  field_scope: "denied",
  /** The token may not touch users in the target's email domain. */
  domain: "denied",
  /** A signed-in user tried to change someone else. */
  not_self: "denied",
  /** The token API was asked to make, rotate or revoke a token holding `tokens:admin`. */
  escalation: "denied",
  invalid_email: "invalid",
  unsupported_media_type: "invalid",
  payload_too_large: "invalid",
  malformed_json: "invalid",
  /** The body is JSON but not a valid change. */
  validation: "invalid",
  /** The client closed the connection while its body was being read. */
  client_aborted: "invalid",
} as const;

export type RefusalReason = keyof typeof REFUSAL_REASONS;
export type RefusalReasonOutcome = (typeof REFUSAL_REASONS)[RefusalReason];

/** Reasons whose refusal is written to the audit trail (after the caller limiter, within budget). */
export const AUDITED_REASONS = [
  "origin",
  "server_token_from_browser",
  "scope",
  "field_scope",
  "domain",
  "not_self",
  "escalation",
  "invalid_email",
  "unsupported_media_type",
  "payload_too_large",
  "malformed_json",
  "validation",
] as const satisfies readonly RefusalReason[];
const AUDITED: ReadonlySet<RefusalReason> = new Set(AUDITED_REASONS);

/** True when a refusal for this reason is written to the audit trail (within the caller's budget). */
export const isAudited = (reason: RefusalReason): boolean => AUDITED.has(reason);
