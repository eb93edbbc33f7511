/**
 * The token management API's part of the contract (tools/openapi/document.ts): `/tokens`
 * (create, list), `/tokens/{id}` (show), `/tokens/{id}/revoke` and `/tokens/{id}/rotate`.
 * Request bodies and the list query come from src/tokens/schemas.ts, the schemas that validate
 * them; the answer schemas below describe what the routes send, and test/openapi.test.ts parses
 * real answers with them.
 */
import * as z from "zod/mini";
import { ADMIN_MAX_LIFETIME_MS, DEFAULT_OVERLAP_S, MAX_OVERLAP_S, SCOPES } from "../../src/auth/scopes.ts";
import { TOKEN_EXAMPLES } from "./examples.ts";

type Json = Record<string, unknown>;

const scopes = z.array(z.enum(SCOPES));
const status = z.enum(["active", "revoked", "expired"]);

/** The token record, as created (`record` of a create answer). */
export const TokenRecordSchema = z.object({
  v: z.literal(1),
  id: z.string(),
  name: z.string(),
  scopes,
  domains: z.optional(z.array(z.string())),
  origins: z.optional(z.array(z.string())),
  expires_at: z.optional(z.string()),
  created_at: z.string(),
});

/** A token as show, revoke and rotate answer it: never its secret or hash. */
export const TokenViewSchema = z.object({
  ...TokenRecordSchema.shape,
  revoked_at: z.optional(z.string()),
  rotated_at: z.optional(z.string()),
  previous_expires_at: z.optional(z.string()),
  status,
});

/** One listed token (from key metadata). */
export const TokenSummarySchema = z.object({
  id: z.string(),
  name: z.string(),
  scopes,
  expires_at: z.optional(z.string()),
  revoked_at: z.optional(z.string()),
  created_at: z.string(),
  status,
});

export const TokenPageSchema = z.object({
  tokens: z.array(TokenSummarySchema),
  cursor: z.nullable(z.string()),
});

/** 201 of create: the secret, once. */
export const TokenCreatedSchema = z.object({ token: z.string(), id: z.string(), record: TokenRecordSchema });

export const TokenRevokedSchema = z.object({
  ...TokenViewSchema.shape,
  already_revoked: z.boolean(),
  note: z.string(),
});

/** 200 of rotate: the new secret, once; `record.previous_expires_at` ends the old one's overlap. */
export const TokenRotatedSchema = z.object({
  token: z.string(),
  id: z.string(),
  record: TokenViewSchema,
  note: z.string(),
});

/**
 * The document's answer schemas: the zod schemas above, with the nested token schemas as
 * references instead of inline copies (the document is in the Worker's bundle).
 */
export function tokenAnswerSchemas(
  jsonSchema: (s: z.ZodMiniType) => Json,
  ref: (name: string) => Json,
): Json {
  const props = (schema: z.ZodMiniType) => (jsonSchema(schema).properties ?? {}) as Json;
  const object = (properties: Json, required: string[]) => ({ type: "object", properties, required });
  return {
    TokenRecord: jsonSchema(TokenRecordSchema),
    TokenView: {
      allOf: [
        ref("TokenRecord"),
        object(
          {
            revoked_at: { type: "string" },
            rotated_at: { type: "string" },
            previous_expires_at: { type: "string" },
            status: props(TokenViewSchema).status,
          },
          ["status"],
        ),
      ],
    },
    TokenSummary: jsonSchema(TokenSummarySchema),
    TokenPage: object(
      { tokens: { type: "array", items: ref("TokenSummary") }, cursor: props(TokenPageSchema).cursor },
      ["tokens", "cursor"],
    ),
    TokenCreated: object({ token: { type: "string" }, id: { type: "string" }, record: ref("TokenRecord") }, [
      "token",
      "id",
      "record",
    ]),
    TokenRevoked: {
      allOf: [
        ref("TokenView"),
        object({ already_revoked: { type: "boolean" }, note: { type: "string" } }, [
          "already_revoked",
          "note",
        ]),
      ],
    },
    TokenRotated: object(
      {
        token: { type: "string" },
        id: { type: "string" },
        record: ref("TokenView"),
        note: { type: "string" },
      },
      ["token", "id", "record", "note"],
    ),
  };
}

const byStatus = (status: number) => TOKEN_EXAMPLES.filter((e) => e.value.status === status);

/** The refusals every token operation may answer with, once each under components.responses. */
export function tokenResponses(
  problemDoc: (description: string, examples: typeof TOKEN_EXAMPLES, headers?: Json) => Json,
): Json {
  const challenge = { "WWW-Authenticate": { $ref: "#/components/headers/WWW-Authenticate" } };
  const retry = { "Retry-After": { $ref: "#/components/headers/Retry-After" } };
  return {
    TokenBadRequest: problemDoc(
      "The body or query is not valid, or the Authorization header is not one bearer credential.",
      byStatus(400),
    ),
    TokenUnsupportedMediaType: problemDoc("The body is not application/json.", []),
    TokenUnauthorized: problemDoc("No valid token.", [], challenge),
    TokenForbidden: problemDoc(
      "No tokens:admin, used from a browser, or asking what no HTTP caller may.",
      byStatus(403),
      challenge,
    ),
    TokenNotFound: problemDoc(
      "TOKEN_ADMIN is off, no token has this id, or it is not active.",
      byStatus(404),
    ),
    TokenRateLimited: problemDoc("Too many requests from this caller.", [], retry),
    TokenUnavailable: problemDoc("The token store or the audit trail is down.", byStatus(503), retry),
  };
}

/** What every token operation shares, said once (the tag's description). */
export const TOKENS_TAG = `Manage tokens (tokens:admin, servers only; where TOKEN_ADMIN is "on"). No tokens:admin token is made, rotated or revoked here: the CLI's direct KV path makes them (alone, no origins, expiring within ${ADMIN_MAX_LIFETIME_MS / 86_400_000} days). Changes are audited first (GET /audit?token=<id>) and reach every location within about a minute.`;

/** The path items, given the shared pieces of the document. */
export function tokenPaths(query: Json, ref: (name: string) => Json, REQUEST_ID: Json): Json {
  const shared = (name: string) => ({ $ref: `#/components/responses/${name}` });
  const op = (
    operationId: string,
    summary: string,
    ok: [status: string, schema: string],
    extra: Json = {},
    withBody = true,
  ): Json => ({
    operationId,
    tags: ["tokens"],
    summary,
    security: [{ bearerToken: ["tokens:admin"] }],
    ...extra,
    responses: {
      [ok[0]]: {
        description: "Done.",
        headers: { "X-Request-Id": REQUEST_ID },
        content: { "application/json": { schema: ref(ok[1]) } },
      },
      "400": shared("TokenBadRequest"),
      ...(withBody ? { "415": shared("TokenUnsupportedMediaType") } : {}),
      "401": shared("TokenUnauthorized"),
      "403": shared("TokenForbidden"),
      "404": shared("TokenNotFound"),
      "429": shared("TokenRateLimited"),
      "503": shared("TokenUnavailable"),
    },
  });
  const body = (name: string, required: boolean) => ({
    requestBody: { required, content: { "application/json": { schema: ref(name) } } },
  });
  const id = { parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }] };
  const describe: Record<string, string> = {
    revoked: "true: only revoked; false: only not revoked. Default: all.",
    expiring: "Only active tokens expiring at or before this ISO 8601 date or date-time.",
    limit: "1 to 1000 (default 100). A page may hold fewer, even none, while cursor is not null.",
    cursor: "The previous page's cursor (also sent as X-Next-Cursor).",
  };
  const parameters = Object.entries((query.properties ?? {}) as Json).map(([name, schema]) => ({
    name,
    in: "query",
    description: describe[name],
    schema,
  }));
  return {
    "/tokens": {
      post: op("createToken", "Create a token; its secret is in this answer only", ["201", "TokenCreated"], {
        ...body("CreateToken", true),
      }),
      get: op(
        "listTokens",
        "List tokens (never a secret or hash), filtered, page by page",
        ["200", "TokenPage"],
        {
          parameters,
        },
      ),
    },
    "/tokens/{id}": { get: op("showToken", "One token", ["200", "TokenView"], id, false) },
    "/tokens/{id}/revoke": {
      post: op("revokeToken", "Revoke a token (idempotent)", ["200", "TokenRevoked"], id, false),
    },
    "/tokens/{id}/rotate": {
      post: op(
        "rotateToken",
        `A new secret, same id; the old one works for overlap_seconds (0 to ${MAX_OVERLAP_S}, default ${DEFAULT_OVERLAP_S}), never past the token's expiry`,
        ["200", "TokenRotated"],
        { ...id, ...body("RotateToken", false) },
      ),
    },
  };
}
