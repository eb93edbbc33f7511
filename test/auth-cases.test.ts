/**
 * The common authentication and authorization cases (test/auth-cases.ts) against every
 * protected operation: the change, the review list, one review entry, the NDJSON export and the
 * token management API (switched on).
 */
import { afterEach, vi } from "vitest";
import { NDJSON } from "../src/audit/query-schema.ts";
import { type ProtectedOperation, runCommonAuthTests } from "./auth-cases.ts";

afterEach(() => vi.restoreAllMocks());

const auth = (authorization: string | undefined): Record<string, string> =>
  authorization === undefined ? {} : { Authorization: authorization };

/** A review: scope `audit:read`, tokens only, refusals not recorded (reviews change nothing). */
const review = (name: string, path: string, accept?: string): ProtectedOperation => ({
  name,
  scopes: ["audit:read"],
  wrongScope: "users:write",
  acceptsJwt: false,
  refusalWrites: 0,
  prepareRequest: (authorization) => ({
    path,
    init: { headers: { ...auth(authorization), ...(accept ? { Accept: accept } : {}) } },
  }),
});

const OPERATIONS: ProtectedOperation[] = [
  {
    name: "PATCH /users/{email}",
    scopes: ["users:write"],
    wrongScope: "audit:read",
    acceptsJwt: true,
    // One refusal entry: the entry and its by-email and by-token index keys (docs/storage.md).
    refusalWrites: 3,
    prepareRequest: (authorization) => ({
      path: "/users/ada@example.com",
      init: {
        method: "PATCH",
        headers: { "Content-Type": "application/json", ...auth(authorization) },
        body: JSON.stringify({ first_name: "Ada" }),
      },
    }),
  },
  review("GET /audit", "/audit"),
  review("GET /audit/{id}", "/audit/01JNOSUCHENTRY0000000000000"),
  review("GET /audit (NDJSON export)", "/audit", NDJSON),
];

/**
 * A token API operation (TOKEN_ADMIN on): scope `tokens:admin`, tokens only. A refused change is
 * recorded (its entry and the actor's by-token key: no target is known before the scope check);
 * a refused read is not.
 */
const tokenApi = (name: string, method: string, path: string, body?: unknown): ProtectedOperation => ({
  name,
  scopes: ["tokens:admin"],
  wrongScope: "users:write",
  acceptsJwt: false,
  refusalWrites: method === "GET" ? 0 : 2,
  prepareRequest: (authorization) => ({
    path,
    init: {
      method,
      headers: {
        ...auth(authorization),
        ...(body === undefined ? {} : { "Content-Type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
      bindings: { TOKEN_ADMIN: "on" },
    },
  }),
});

OPERATIONS.push(
  tokenApi("POST /tokens", "POST", "/tokens", { name: "auth case", scopes: ["audit:read"] }),
  tokenApi("GET /tokens", "GET", "/tokens"),
  tokenApi("GET /tokens/{id}", "GET", "/tokens/tok_0000000000000000"),
  tokenApi("POST /tokens/{id}/revoke", "POST", "/tokens/tok_0000000000000000/revoke"),
  tokenApi("POST /tokens/{id}/rotate", "POST", "/tokens/tok_0000000000000000/rotate", {}),
);

for (const op of OPERATIONS) runCommonAuthTests(op);
