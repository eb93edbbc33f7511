import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { AppEnv } from "./context.ts";
import { logEvent } from "./log.ts";
import type { RefusalReason } from "./reasons.ts";
import { respond } from "./respond.ts";

declare module "hono" {
  interface ContextVariableMap {
    /** The problem type of the response, when it is one (for the access log). */
    problem?: ProblemType;
    /** Exactly why the request was refused, when it was (for the access log). */
    reason?: RefusalReason;
  }
}

/** Every problem this service can answer with, its HTTP status and its title. */
const PROBLEMS = {
  "invalid-request": [400, "Invalid request"],
  "malformed-json": [400, "Malformed JSON body"],
  "invalid-email": [400, "Invalid email in path"],
  "validation-failed": [400, "Validation failed"],
  unauthorized: [401, "Unauthorized"],
  forbidden: [403, "Forbidden"],
  "not-found": [404, "Not found"],
  "user-not-found": [404, "No such Village user"],
  "method-not-allowed": [405, "Method not allowed"],
  "payload-too-large": [413, "Payload too large"],
  "unsupported-media-type": [415, "Unsupported media type"],
  "village-rejected": [422, "Village rejected the change"],
  "rate-limited": [429, "Too many requests"],
  internal: [500, "Internal error"],
  "bad-gateway": [502, "Upstream error"],
  "service-unavailable": [503, "Service unavailable"],
  "gateway-timeout": [504, "Upstream timeout"],
} as const satisfies Record<string, readonly [ContentfulStatusCode, string]>;

export type ProblemType = keyof typeof PROBLEMS;

/** The reason of a problem type when the thrower named none (one reason per type). */
const REASON_OF_TYPE: Partial<Record<ProblemType, RefusalReason>> = {
  "invalid-request": "invalid_request",
  "malformed-json": "malformed_json",
  "invalid-email": "invalid_email",
  "validation-failed": "validation",
  unauthorized: "unauthenticated",
  forbidden: "scope",
  "payload-too-large": "payload_too_large",
  "unsupported-media-type": "unsupported_media_type",
  "rate-limited": "rate_limited",
};

/** A field-level validation error, as carried in a problem's `errors[]`. */
export interface FieldError {
  /** Dot path of the offending field, `""` for the whole body. */
  field: string;
  /** JSON Pointer (RFC 6901) into the request body. */
  pointer: string;
  detail: string;
}

/** URI of a problem type: a URN, documented in docs/problems.md. */
export const problemTypeUri = (type: ProblemType): string => `urn:village-edge:problem:${type}`;

/**
 * The one error type of this service. Thrown anywhere, turned into an RFC 9457
 * `application/problem+json` response by {@link onError}. `detail` goes on the
 * wire, so it must never carry secrets or upstream data; `logDetail` goes to logs only.
 */
export class ProblemError extends Error {
  readonly type: ProblemType;
  readonly status: ContentfulStatusCode;
  readonly detail: string;
  readonly errors?: FieldError[];
  readonly headers?: Record<string, string>;
  readonly logDetail?: string;
  /**
   * True for a refusal the audit trail must not record although the token was valid, such
   * as a rate-limited flood: recording it would cost one KV write per refused request.
   */
  readonly skipAudit?: boolean;
  /** Exactly why the request was refused (src/http/reasons.ts); derived from `type` when not given. */
  readonly reason?: RefusalReason;

  constructor(
    type: ProblemType,
    detail: string,
    extra: {
      errors?: FieldError[];
      headers?: Record<string, string>;
      logDetail?: string;
      skipAudit?: boolean;
      reason?: RefusalReason;
    } = {},
  ) {
    super(detail);
    this.name = "ProblemError";
    this.type = type;
    this.status = PROBLEMS[type][0];
    this.detail = detail;
    this.errors = extra.errors;
    this.headers = extra.headers;
    this.logDetail = extra.logDetail;
    this.skipAudit = extra.skipAudit;
    this.reason = extra.reason ?? REASON_OF_TYPE[type];
  }
}

/** Builds the problem+json response for an error. */
export function problemResponse(c: Context<AppEnv>, err: ProblemError): Response {
  c.set("problem", err.type);
  if (err.reason) c.set("reason", err.reason);
  const body: Record<string, unknown> = {
    type: problemTypeUri(err.type),
    title: PROBLEMS[err.type][1],
    status: err.status,
    detail: err.detail,
    instance: c.get("requestId"),
  };
  if (err.errors) body.errors = err.errors;
  return respond(c, JSON.stringify(body), err.status, {
    "Content-Type": "application/problem+json",
    ...err.headers,
  });
}

const FROM_HTTP_STATUS: Partial<Record<number, ProblemType>> = {
  400: "invalid-request",
  401: "unauthorized",
  404: "not-found",
  413: "payload-too-large",
  415: "unsupported-media-type",
};

/** The single error handler: every thrown error leaves as problem+json, internals only in logs. */
export const onError: ErrorHandler = (err, c) => {
  if (err instanceof ProblemError) {
    if (err.status >= 500 || err.logDetail) {
      logEvent(err.status >= 500 ? "error" : "warn", "problem", c, {
        type: err.type,
        status: err.status,
        detail: err.logDetail ?? err.detail,
      });
    }
    return problemResponse(c, err);
  }
  if (err instanceof HTTPException && err.status < 500) {
    const type = FROM_HTTP_STATUS[err.status] ?? "invalid-request";
    return problemResponse(c, new ProblemError(type, PROBLEMS[type][1]));
  }
  logEvent("error", "unhandled_error", c, {
    error: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
  });
  return problemResponse(c, new ProblemError("internal", "An internal error occurred."));
};

/** 404 for every path this service does not serve. */
export const notFound: NotFoundHandler = (c) =>
  problemResponse(c, new ProblemError("not-found", "No such route."));

/** Every problem type with its status and title, for the published contract. */
export const problemCatalog = (): { type: ProblemType; status: number; title: string }[] =>
  Object.entries(PROBLEMS).map(([type, [status, title]]) => ({ type: type as ProblemType, status, title }));
