/**
 * The authentication and authorization cases every protected operation must answer alike
 * (like unkey's `runCommonRouteTests({ prepareRequest })`): one table, run against each
 * operation by {@link runCommonAuthTests}. Each case asserts the status, the problem type,
 * `WWW-Authenticate`, that nothing reached Village, and the KV writes the request caused.
 * A changed answer is a one-line change of its row in {@link AUTH_CASES}.
 */
import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { createJwksProvider } from "../src/auth/jwks.ts";
import { findToken, generateSecret, revokeToken, type Scope } from "../src/auth/tokens.ts";
import { createApp } from "../src/index.ts";
import { expectProblem, mint, type SendOptions, send, spyUpstream } from "./helpers.ts";
import { claimsFor, generateKey, signJwt, spyIdpAndUpstream, userAuthBindings } from "./jwt-helpers.ts";

const REALM = 'Bearer realm="village-edge"';

/** A token of these scopes; a `tokens:admin` one must expire (within 30 days), so it gets a day. */
const mintFor = (scopes: Scope[]) =>
  mint(scopes, scopes.includes("tokens:admin") ? { expiresAt: new Date(Date.now() + 86_400_000) } : {});

/** A protected operation, as the table needs to know it. */
export interface ProtectedOperation {
  /** `METHOD /path` as the contract names it. */
  name: string;
  /** The scopes a token needs here; a token with only `wrongScope` is refused. */
  scopes: Scope[];
  wrongScope: Scope;
  /** True where a signed-in user's JWT is a valid credential. */
  acceptsJwt: boolean;
  /** AUDIT writes of one recorded refusal of a valid token here (0 where refusals are not recorded). */
  refusalWrites: number;
  /** The request, with `authorization` as its `Authorization` header (none when undefined). */
  prepareRequest(authorization: string | undefined): { path: string; init: SendOptions };
}

/** What one case answers: status, problem type, the `WWW-Authenticate` challenge and AUDIT writes. */
interface Expected {
  status: number;
  type: string;
  challenge: string;
  auditWrites: number;
}

/** One row: the credential presented, and what the operation must answer. */
interface AuthCase {
  name: string;
  /** Skips operations where the case does not apply. */
  appliesTo?: (op: ProtectedOperation) => boolean;
  /** Sign-in (`AUTH_*`) turned on, with a fresh app (own JWKS cache) and the test IdP's keys. */
  signIn?: boolean;
  /** The credential; may mint tokens, move the clock or sign a JWT. */
  authorization(op: ProtectedOperation, jwt: () => Promise<string>): Promise<string | undefined>;
  /** Where the credential goes instead of the header (the query string). */
  inQuery?: boolean;
  expected(op: ProtectedOperation): Expected;
}

const invalidRequest = {
  status: 400,
  type: "invalid-request",
  challenge: `${REALM}, error="invalid_request"`,
  auditWrites: 0,
};
const invalidToken = {
  status: 401,
  type: "unauthorized",
  challenge: `${REALM}, error="invalid_token"`,
  auditWrites: 0,
};
const insufficientScope = (scope: string, auditWrites: number) => ({
  status: 403,
  type: "forbidden",
  challenge: `${REALM}, error="insufficient_scope", scope="${scope}"`,
  auditWrites,
});

/** Flips one hex character of the checksum. */
const badChecksum = (secret: string) => `${secret.slice(0, -1)}${secret.endsWith("a") ? "b" : "a"}`;

/** The table. `Basic` is 401 with a plain challenge (RFC 6750 §3.1: no bearer credentials). */
export const AUTH_CASES: AuthCase[] = [
  {
    name: "no token",
    authorization: async () => undefined,
    expected: () => ({ status: 401, type: "unauthorized", challenge: REALM, auditWrites: 0 }),
  },
  {
    name: "an empty Authorization header",
    authorization: async () => "",
    expected: () => ({ status: 401, type: "unauthorized", challenge: REALM, auditWrites: 0 }),
  },
  {
    name: "a malformed header (two credentials)",
    authorization: async () => "Bearer aaaa bbbb",
    expected: () => invalidRequest,
  },
  {
    name: "a bearer scheme without a token",
    authorization: async () => "Bearer",
    expected: () => invalidRequest,
  },
  {
    name: "another scheme (Basic)",
    authorization: async () => `Basic ${btoa("user:pass")}`,
    expected: () => ({ status: 401, type: "unauthorized", challenge: REALM, auditWrites: 0 }),
  },
  {
    name: "a valid token in the query string",
    inQuery: true,
    authorization: (op) => mintFor(op.scopes),
    expected: () => invalidRequest,
  },
  {
    name: "an unknown token",
    authorization: async () => `Bearer ${generateSecret()}`,
    expected: () => invalidToken,
  },
  {
    name: "a token with a bad checksum",
    authorization: async (op) => `Bearer ${badChecksum(await mintFor(op.scopes))}`,
    expected: () => invalidToken,
  },
  {
    name: "an expired token",
    authorization: async (op) => {
      const token = await mint(op.scopes, { expiresAt: new Date(Date.now() + 5 * 60_000) });
      // The record is still in KV (its KV expiration is later); the Worker checks the time.
      vi.spyOn(Date, "now").mockReturnValue(Date.now() + 10 * 60_000);
      return `Bearer ${token}`;
    },
    expected: () => invalidToken,
  },
  {
    name: "a revoked token",
    authorization: async (op) => {
      const token = await mintFor(op.scopes);
      const record = await findToken(env.TOKENS, token);
      expect(await revokeToken(env.TOKENS, record?.id ?? "")).not.toBeNull();
      return `Bearer ${token}`;
    },
    expected: () => invalidToken,
  },
  {
    name: "a token without the operation's scope",
    authorization: async (op) => `Bearer ${await mint([op.wrongScope])}`,
    expected: (op) => insufficientScope(op.scopes.join(" "), op.refusalWrites),
  },
  {
    name: "a JWT while end-user sign-in is off",
    authorization: async (_op, jwt) => `Bearer ${await jwt()}`,
    expected: () => invalidToken,
  },
  {
    name: "a valid JWT where only tokens are accepted",
    appliesTo: (op) => !op.acceptsJwt,
    signIn: true,
    authorization: async (_op, jwt) => `Bearer ${await jwt()}`,
    expected: (op) => insufficientScope(op.scopes.join(" "), 0),
  },
];

/** Counts the writes (`put`, `delete`) made through a KV namespace. */
function countingWrites(kv: KVNamespace) {
  const writes: string[] = [];
  const counted = new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      if (prop === "put" || prop === "delete") {
        return (key: string, ...rest: unknown[]) => {
          writes.push(`${String(prop)} ${key}`);
          return (value as (...a: unknown[]) => unknown).call(target, key, ...rest);
        };
      }
      return value.bind(target);
    },
  });
  return { kv: counted, writes };
}

/** Runs every case of {@link AUTH_CASES} that applies against `op`. */
export function runCommonAuthTests(op: ProtectedOperation): void {
  describe(`${op.name}: the common authentication and authorization cases`, () => {
    for (const c of AUTH_CASES.filter((c) => c.appliesTo?.(op) ?? true)) {
      const expected = c.expected(op);
      it(`${c.name} -> ${expected.status} ${expected.type}, nothing forwarded, ${expected.auditWrites} AUDIT writes`, async () => {
        const key = await generateKey("RS256", "auth-cases");
        const jwt = () => signJwt(key, claimsFor("ada@example.com"));
        const signIn = userAuthBindings();
        const bindings: Partial<Env> = c.signIn ? signIn : {};
        const upstream = c.signIn
          ? spyIdpAndUpstream(signIn.AUTH_JWKS_URL, () => ({ keys: [key.publicJwk] })).upstream
          : spyUpstream();
        const authorization = await c.authorization(op, jwt);
        const audit = countingWrites(env.AUDIT);
        const tokens = countingWrites(env.TOKENS);
        const { path, init } = op.prepareRequest(c.inQuery ? undefined : authorization);
        const query = c.inQuery ? `${path.includes("?") ? "&" : "?"}access_token=${authorization}` : "";
        const res = await send(`${path}${query}`, {
          ...init,
          bindings: { ...init.bindings, ...bindings, AUDIT: audit.kv, TOKENS: tokens.kv },
          app: c.signIn ? createApp({ jwks: createJwksProvider() }) : undefined,
        });
        await expectProblem(res, expected.status, expected.type);
        expect(res.headers.get("WWW-Authenticate")).toBe(expected.challenge);
        expect(upstream).toHaveLength(0);
        expect(tokens.writes).toEqual([]);
        expect(audit.writes, audit.writes.join("\n")).toHaveLength(expected.auditWrites);
        vi.restoreAllMocks();
      });
    }
  });
}
