/**
 * Why a credential is refused, as a union of tagged reasons, and the one place that turns a
 * reason into the wire problem (RFC 6750: 400 `invalid_request`, 401 `invalid_token`, 403
 * `insufficient_scope`, always with `WWW-Authenticate`). The switch is exhaustive: a new reason
 * does not compile until it has its answer.
 */
import { ProblemError } from "../http/errors.ts";
import type { JwtRefusal } from "./jwt.ts";

/** Why a bearer credential was refused before any principal was established. */
export type CredentialRefusal =
  /** No `Authorization` header, or an empty one. */
  | { reason: "no_token" }
  /** A token in the query string (`access_token`): refused wherever it is valid. */
  | { reason: "token_in_query" }
  /** A header that is not one `Bearer <b64token>` credential (another scheme, two tokens, ...). */
  | { reason: "not_bearer" }
  /** A header longer than any credential we issue or accept. */
  | { reason: "header_too_long" }
  /** A `vge_` token of the wrong shape or with a wrong checksum: refused without a KV read. */
  | { reason: "token_malformed" }
  /** A well-formed token with no live record: unknown, revoked or expired alike. */
  | { reason: "token_unknown" }
  /** Neither one of our tokens nor shaped like a JWT. */
  | { reason: "unknown_credential" }
  /** A JWT while end-user sign-in is not configured. */
  | { reason: "jwt_not_configured" }
  /** A JWT that failed verification. */
  | { reason: "jwt"; jwt: JwtRefusal };

const REALM = 'Bearer realm="village-edge"';

const challenge = (error?: string, extra = "") => (error ? `${REALM}, error="${error}"${extra}` : REALM);

/** 401 for a missing token (no error code, RFC 6750 §3.1). */
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

/** 403 naming the scope that would be needed, when there is one. */
export const insufficientScope = (detail: string, scope?: string) =>
  new ProblemError("forbidden", detail, {
    headers: { "WWW-Authenticate": challenge("insufficient_scope", scope ? `, scope="${scope}"` : "") },
  });

/** The problem a refused credential is answered with (what goes to logs stays in `logDetail`). */
export function credentialProblem(r: CredentialRefusal): ProblemError {
  switch (r.reason) {
    case "no_token":
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
    case "jwt":
      return invalidToken(
        `jwt: ${r.jwt.reason === "algorithm not allowed" ? `${r.jwt.reason}: ${r.jwt.alg}` : r.jwt.reason}`,
      );
    default:
      return r satisfies never;
  }
}
