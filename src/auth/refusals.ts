/**
 * Why a credential is refused, as a union of tagged reasons, and the one place that turns a
 * reason into the wire problem (RFC 6750: 400 `invalid_request`, 401 `invalid_token`, 403
 * `insufficient_scope`, always with `WWW-Authenticate`). The switch is exhaustive: a new reason
 * does not compile until it has its answer.
 */
import { ProblemError } from "../http/errors.ts";
import type { RefusalReason } from "../http/reasons.ts";
import type { JwtRefusal } from "./jwt.ts";

/**
 * Why a bearer credential was refused before any principal was established:
 * - `no_token`: no `Authorization` header, or an empty one;
 * - `other_scheme`: credentials of another scheme (`Basic …`): no bearer credentials either;
 * - `token_in_query`: a token in the query string (`access_token`), refused even when valid;
 * - `not_bearer`: a header that is not one `Bearer <b64token>` (another scheme, two tokens, ...);
 * - `header_too_long`: longer than any credential we issue or accept;
 * - `token_malformed`: a `vge_` token of the wrong shape or checksum, refused without a KV read;
 * - `token_unknown`: a well-formed token without a live record (unknown, revoked, expired alike);
 * - `unknown_credential`: neither one of our tokens nor shaped like a JWT;
 * - `jwt_not_configured`: a JWT while end-user sign-in is off;
 * - a {@link JwtRefusal} (an object): a JWT that failed verification, and why.
 */
export type CredentialRefusal =
  | "no_token"
  | "other_scheme"
  | "token_in_query"
  | "not_bearer"
  | "header_too_long"
  | "token_malformed"
  | "token_unknown"
  | "unknown_credential"
  | "jwt_not_configured"
  | JwtRefusal;

const REALM = 'Bearer realm="village-edge"';

const challenge = (error?: string, extra = "") => (error ? `${REALM}, error="${error}"${extra}` : REALM);

/** 401 for a request without bearer credentials (none, or another scheme): no error code, RFC 6750 §3.1. */
const missingToken = () =>
  new ProblemError("unauthorized", "A bearer token is required.", {
    headers: { "WWW-Authenticate": challenge() },
  });

/** The one 401 for unknown, malformed, expired and revoked tokens alike; `why` goes to logs only. */
const invalidToken = (why?: string) =>
  new ProblemError("unauthorized", "The bearer token is invalid, expired or revoked.", {
    headers: { "WWW-Authenticate": challenge("invalid_token") },
    logDetail: why,
  });

/** 400 for a header that is not one well-formed bearer credential. */
const invalidRequest = (detail: string) =>
  new ProblemError("invalid-request", detail, {
    headers: { "WWW-Authenticate": challenge("invalid_request") },
  });

/** 403 naming the scope that would be needed, when there is one, and exactly why (`reason`). */
export const insufficientScope = (detail: string, scope?: string, reason: RefusalReason = "scope") =>
  new ProblemError("forbidden", detail, {
    headers: { "WWW-Authenticate": challenge("insufficient_scope", scope ? `, scope="${scope}"` : "") },
    reason,
  });

/** The problem a refused credential is answered with (what goes to logs stays in `logDetail`). */
export function credentialProblem(r: CredentialRefusal): ProblemError {
  if (typeof r === "object") {
    return invalidToken(`jwt: ${r.reason === "algorithm not allowed" ? `${r.reason}: ${r.alg}` : r.reason}`);
  }
  switch (r) {
    case "no_token":
    case "other_scheme":
      return missingToken();
    case "token_in_query":
      return invalidRequest("Tokens are accepted only in the Authorization header.");
    case "not_bearer":
      return invalidRequest("The Authorization header must be a single `Bearer <token>` credential.");
    case "header_too_long":
    case "token_malformed":
    case "token_unknown":
    case "unknown_credential":
      return invalidToken();
    case "jwt_not_configured":
      return invalidToken("jwt: end-user sign-in is not configured");
    default:
      return r satisfies never;
  }
}
