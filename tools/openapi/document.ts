/**
 * The published contract (`GET /openapi.json`, OpenAPI 3.1), built from the zod schemas that
 * validate requests: their input side, through zod's own `toJSONSchema`.
 *
 * This module is not part of the Worker's bundle (zod's JSON Schema generator alone would be
 * a seventh of the size budget): `npm run openapi` writes what {@link buildOpenApi} returns to
 * src/meta/openapi.json, which the Worker serves. test/openapi.test.ts fails when that file is not
 * what this module builds now, and checks every example against the running Worker;
 * `npm run openapi:check` also validates the file with an independent OpenAPI validator.
 *
 * To document a route: add its path items to `paths` below (and examples to tools/openapi/examples.ts).
 */
import * as z from "zod/mini";
import { auditQuerySchema } from "../../src/audit/query-schema.ts";
import { SCOPES } from "../../src/auth/tokens.ts";
import { problemCatalog, problemTypeUri } from "../../src/http/errors.ts";
import { DOMAIN, LOCAL } from "../../src/model/email.ts";
import { INTERNATIONAL_FORMAT } from "../../src/model/phone.ts";
import { tokenSchemas } from "../../src/tokens/schemas.ts";
import { changeSchema, MAX_BODY_BYTES, NAME_MAX } from "../../src/users/changes.ts";
import {
  AuditDetailSchema,
  AuditPageSchema,
  AuditRecordsPageSchema,
  AuditSummarySchema,
  auditParameters,
  auditPaths,
} from "./audit.ts";
import {
  ACCEPTED_EXAMPLES,
  AUDIT_EXAMPLES,
  CHANGE_EXAMPLES,
  INTERNAL_EXAMPLE,
  PREFLIGHT_EXAMPLES,
  PROBLEM_EXAMPLES,
  type ProblemExample,
  ROUTE_EXAMPLES,
} from "./examples.ts";
import { TOKENS_TAG, tokenAnswerSchemas, tokenPaths, tokenResponses } from "./tokens.ts";

type Json = Record<string, unknown>;

/** The Worker builds its schemas on first use; the document is built from the same instances. */
const ChangeSchema = changeSchema();
const AuditQuerySchema = auditQuerySchema();
const {
  create: CreateTokenSchema,
  rotate: RotateTokenSchema,
  listQuery: TokenListQuerySchema,
} = tokenSchemas();

const docs = z.registry<{
  description?: string;
  minProperties?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
}>();

const inner = (re: RegExp) => re.source.replace(/^\^/, "").replace(/\$$/, "");
/**
 * The address src/model/email.ts accepts (before the domain is lowercased): a dot-atom local
 * part of 1 to 64 characters, `@`, a domain of LDH labels; 3 to 254 characters in all.
 */
export const EMAIL_SCHEMA = {
  type: "string",
  minLength: 3,
  maxLength: 254,
  pattern: `^(?=[^@]{1,64}@)(?:${inner(LOCAL)})@(?:${inner(DOMAIN).replaceAll("a-z", "A-Za-z")})$`,
};
/** Control, line/paragraph separator and bidi-override characters, refused in names. */
const NAME_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069]*$";
docs.add(ChangeSchema, {
  description: "The fields to change. At least one; any other field refuses the whole change.",
  minProperties: 1,
});
const nameDoc = {
  minLength: 1,
  maxLength: NAME_MAX,
  pattern: NAME_PATTERN,
};
docs.add(ChangeSchema.shape.first_name, {
  description: `1 to ${NAME_MAX} characters after Unicode NFC normalization and trimming; no control, line-separator or bidi-override characters. Sent trimmed and normalized. \`null\` is refused: leave the field out to keep it.`,
  ...nameDoc,
});
docs.add(ChangeSchema.shape.last_name, { description: "As first_name.", ...nameDoc });
docs.add(ChangeSchema.shape.phone_number, {
  description:
    "International format: `+`, the calling code, then the number, with optional spaces, dots, dashes and parentheses. Must be a possible number (a length that its country's numbering plan allows): too short, too long or an impossible length for the country is refused, each with its own message. Sent in E.164 form.",
  pattern: INTERNATIONAL_FORMAT.source,
});

/** The schema with the part at `path` replaced by a reference to a component. */
function withRef(schema: Json, path: string[], name: string): Json {
  const copy = structuredClone(schema);
  let node = copy;
  for (const key of path.slice(0, -1)) node = node[key] as Json;
  node[path[path.length - 1]] = ref(name);
  return copy;
}

/** A zod schema as a JSON Schema inside components (no `$schema` of its own). */
function jsonSchema(schema: z.ZodMiniType): Json {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io: "input", metadata: docs }) as Json;
  return rest;
}

const FieldError = z.object({
  field: z.string(),
  pointer: z.string(),
  detail: z.string(),
});

/** The one error shape, RFC 9457. `instance` is the request id. */
export const ProblemSchema = z.object({
  type: z.enum(problemCatalog().map((p) => problemTypeUri(p.type)) as [string, ...string[]]),
  title: z.string(),
  status: z.int(),
  detail: z.string(),
  instance: z.string(),
  errors: z.optional(z.array(FieldError)),
});

/** The 202 answer to an accepted change: the normalized email and changes as forwarded. */
export const AcceptedSchema = z.object({
  status: z.literal("accepted"),
  request_id: z.string(),
  email: z.string(),
  changes: z.object({
    first_name: z.optional(z.string()),
    last_name: z.optional(z.string()),
    phone_number: z.optional(z.string()),
  }),
});

export const HealthSchema = z.object({ status: z.literal("ok") });

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const header = (description: string) => ({ description, schema: { type: "string" } });
/** Headers many responses carry, defined once under components.headers. */
const SHARED_HEADERS = {
  "X-Request-Id": header("The request id: the caller's X-Request-Id when well formed, else a new UUID."),
  "WWW-Authenticate": header(
    'RFC 6750 challenge. A plain `Bearer realm="village-edge"` on a 401 without bearer credentials (no `Authorization` header, or another scheme such as `Basic`, RFC 6750 §3.1); `error="invalid_token"` on a 401 for an unknown, malformed, expired or revoked token; `error="invalid_request"` on a 400 for a malformed bearer header; `error="insufficient_scope"` (with `scope` when one would do) on a 403.',
  ),
  "Retry-After": header("Seconds to wait before retrying."),
};
const headerRef = (name: keyof typeof SHARED_HEADERS) => ({ $ref: `#/components/headers/${name}` });
const REQUEST_ID = headerRef("X-Request-Id");

/** A problem+json response with its examples (one per way to get it). */
function problemDoc(description: string, examples: ProblemExample[], headers: Json = {}): Json {
  return {
    description,
    headers: { "X-Request-Id": REQUEST_ID, ...headers },
    content: {
      "application/problem+json": {
        schema: ref("Problem"),
        examples: Object.fromEntries(examples.map((e) => [e.name, { summary: e.summary, value: e.value }])),
      },
    },
  };
}

const byStatus = (status: number) => PROBLEM_EXAMPLES.filter((e) => e.value.status === status);
/** Refusals of how the credential was sent, the same on every protected operation. */
const CREDENTIAL_EXAMPLES = PROBLEM_EXAMPLES.filter((e) =>
  ["token-in-query", "malformed-authorization"].includes(e.name),
);
/** A problem response of the review API, with the examples of that status that belong to it. */
const auditProblems = (status: number, description: string, headers: Json = {}, only?: string[]) =>
  problemDoc(
    description,
    [...AUDIT_EXAMPLES, ...CREDENTIAL_EXAMPLES].filter(
      (e) => e.value.status === status && (!only || only.includes(e.name)),
    ),
    headers,
  );
const CHALLENGE = headerRef("WWW-Authenticate");

function changeUserResponses(): Json {
  return {
    "202": {
      description: "Accepted: Village queued the change (it applies asynchronously).",
      headers: { "X-Request-Id": REQUEST_ID },
      content: {
        "application/json": {
          schema: ref("Accepted"),
          examples: Object.fromEntries(
            ACCEPTED_EXAMPLES.map((e) => [e.name, { summary: e.summary, value: e.value }]),
          ),
        },
      },
    },
    "400": problemDoc(
      "The request is malformed: header, path (a query string or fragment included), JSON or field values, or the client stopped sending its body.",
      byStatus(400),
      {
        "WWW-Authenticate": CHALLENGE,
      },
    ),
    "401": problemDoc("No bearer credentials, or no valid token.", byStatus(401), {
      "WWW-Authenticate": CHALLENGE,
    }),
    "403": problemDoc("The token may not make this change; nothing was forwarded.", byStatus(403), {
      "WWW-Authenticate": CHALLENGE,
    }),
    "404": problemDoc("Village has no such user.", byStatus(404)),
    "413": problemDoc(`The body is over ${MAX_BODY_BYTES} bytes.`, byStatus(413)),
    "415": problemDoc("The body is not application/json.", byStatus(415), {
      "Accept-Patch": header("application/json"),
    }),
    "422": problemDoc("Village rejected the change.", byStatus(422)),
    "429": problemDoc(
      "Too many changes from this caller, or phone changes for this user, in a minute; nothing was forwarded, nothing written.",
      byStatus(429),
      { "Retry-After": headerRef("Retry-After") },
    ),
    "500": problemDoc("Misconfiguration or an internal error; details go to the logs only.", byStatus(500)),
    "502": problemDoc("Village failed or answered unexpectedly.", byStatus(502)),
    "503": problemDoc("Token verification is unavailable.", byStatus(503), {
      "Retry-After": headerRef("Retry-After"),
    }),
    "504": problemDoc("Village did not answer in time; the change may or may not apply.", byStatus(504)),
  };
}

const scopesText = SCOPES.map((s) => `\`${s}\``).join(", ");

/** Every operation of the document's paths. */
function operations(paths: Json): Json[] {
  return Object.values(paths).flatMap((item) => Object.values(item as Json) as Json[]);
}

/**
 * Builds the whole document. Every operation also lists 405 (another method on its path) and
 * 500 (an internal error: any operation can end in one).
 */
export function buildOpenApi(): Json {
  const document = buildDocument();
  for (const operation of operations(document.paths as Json)) {
    const responses = operation.responses as Json;
    responses["405"] ??= { $ref: "#/components/responses/MethodNotAllowed" };
    responses["500"] ??= { $ref: "#/components/responses/InternalError" };
    operation.responses = Object.fromEntries(
      Object.entries(responses).sort(([a], [b]) => a.localeCompare(b)),
    );
  }
  return document;
}

function buildDocument(): Json {
  return {
    openapi: "3.1.0",
    info: {
      title: "village-edge",
      version: "0.1.0",
      description: [
        "A narrow door to Village's Patch User API: callers hold a scoped token of ours (or a signed-in user's JWT), never the Village key.",
        "Every error is RFC 9457 `application/problem+json` (schema `Problem`); `instance` is the request id,",
        "also sent as `X-Request-Id`. Any other path answers 404 `not-found`; any other method on a path",
        "answers 405 `method-not-allowed` with `Allow`.",
      ].join(" "),
    },
    servers: [
      {
        url: "/",
        description: "The village-edge this document is served by (npm start: http://127.0.0.1:8787)",
      },
    ],
    tags: [
      { name: "users", description: "Change Village user records." },
      { name: "audit", description: "Review who changed what, and what was refused." },
      {
        name: "tokens",
        description: TOKENS_TAG,
      },
      { name: "service", description: "Liveness and this contract." },
    ],
    paths: {
      "/users/{email}": {
        patch: {
          operationId: "changeUser",
          tags: ["users"],
          summary: "Change a Village user's first name, last name or phone number",
          description:
            "Validates the change, checks the token's scopes and email domains, and forwards the change to Village. A token limited to some fields may not change another: the whole change is refused.",
          security: [{ bearerToken: ["users:write"] }],
          parameters: [
            {
              name: "email",
              in: "path",
              required: true,
              description:
                "The user's email, percent-encoded once (`@` may stay as is). The domain is compared and forwarded lowercased.",
              schema: EMAIL_SCHEMA,
              example: "ada@example.com",
            },
          ],
          requestBody: {
            required: true,
            content: {
              "application/json": {
                schema: ref("Change"),
                examples: Object.fromEntries(
                  CHANGE_EXAMPLES.map((e) => [e.name, { summary: e.summary, value: e.value }]),
                ),
              },
            },
          },
          responses: changeUserResponses(),
        },
        options: {
          operationId: "preflightChangeUser",
          tags: ["users"],
          summary: "CORS preflight for browser frontends (origins in ALLOWED_ORIGINS)",
          security: [],
          parameters: [
            {
              name: "email",
              in: "path",
              required: true,
              description: "As for PATCH: the user's email.",
              schema: { type: "string" },
            },
          ],
          responses: {
            "204": {
              description:
                "From an allowed origin: the methods and headers it may use. Without a preflight: `Allow`.",
              headers: {
                "Access-Control-Allow-Methods": header("PATCH"),
                "Access-Control-Allow-Headers": header("The request headers a page may send."),
                "Access-Control-Max-Age": header("Seconds a browser may cache this answer."),
                Allow: header("PATCH, OPTIONS"),
              },
            },
            "403": problemDoc("A preflight from an origin that is not allowed.", PREFLIGHT_EXAMPLES),
          },
        },
      },
      ...auditPaths(
        auditParameters(jsonSchema(AuditQuerySchema), EMAIL_SCHEMA),
        ref,
        auditProblems,
        REQUEST_ID,
      ),
      ...tokenPaths(jsonSchema(TokenListQuerySchema), ref, REQUEST_ID),
      "/healthz": {
        get: {
          operationId: "health",
          tags: ["service"],
          summary: "Liveness: no binding read, no upstream call",
          security: [],
          responses: {
            "200": {
              description: "The Worker runs.",
              content: { "application/json": { schema: ref("Health"), example: { status: "ok" } } },
            },
          },
        },
      },
      "/docs": {
        get: {
          operationId: "docs",
          tags: ["service"],
          summary:
            "This document as a readable API reference (an HTML page; the renderer is served from /docs/)",
          security: [],
          responses: {
            "200": {
              description:
                "The API reference page. It renders /openapi.json in the browser and loads nothing from elsewhere (Content-Security-Policy).",
              headers: {
                "X-Request-Id": REQUEST_ID,
                "Content-Security-Policy": header("Same origin only; no inline script."),
              },
              content: { "text/html": { schema: { type: "string" } } },
            },
          },
        },
      },
      "/openapi.json": {
        get: {
          operationId: "openapi",
          tags: ["service"],
          summary: "This document",
          security: [],
          responses: {
            "200": {
              description: "The OpenAPI 3.1 document.",
              content: { "application/json": { schema: { type: "object" } } },
            },
          },
        },
      },
    },
    components: {
      schemas: {
        Change: jsonSchema(ChangeSchema),
        Accepted: jsonSchema(AcceptedSchema),
        Problem: jsonSchema(ProblemSchema),
        Health: jsonSchema(HealthSchema),
        AuditSummary: jsonSchema(AuditSummarySchema),
        AuditPage: withRef(jsonSchema(AuditPageSchema), ["properties", "entries", "items"], "AuditSummary"),
        AuditDetail: jsonSchema(AuditDetailSchema),
        CreateToken: jsonSchema(CreateTokenSchema),
        RotateToken: jsonSchema(RotateTokenSchema),
        ...tokenAnswerSchemas(jsonSchema, ref),
        AuditRecordsPage: jsonSchema(AuditRecordsPageSchema),
      },
      headers: SHARED_HEADERS,
      responses: {
        MethodNotAllowed: problemDoc("A method the path does not serve.", ROUTE_EXAMPLES, {
          Allow: header("The methods the path serves."),
        }),
        InternalError: problemDoc("An internal error; details go to the logs only.", [INTERNAL_EXAMPLE]),
        ...tokenResponses(problemDoc),
      },
      securitySchemes: {
        bearerToken: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "vge_ token",
          description: `An opaque token issued by the operators (\`vge_\`, 64 hex digits, an 8-hex-digit checksum), in the Authorization header only. Scopes: ${scopesText}; \`users:write\` allows every field, \`users:write:<field>\` one field. A token may also be limited to email domains, browser origins and an expiry. Revocation takes effect within about a minute. Where end-user sign-in is configured, a signed-in user's JWT (from the configured issuer) is also accepted: it may change only that user's own record, and only the self-service fields.`,
        },
      },
    },
  };
}
