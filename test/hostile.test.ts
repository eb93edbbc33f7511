/**
 * The hostile-input suite: one table of attacks, each mapped to its OWASP API Security Top 10
 * (2023) category. Every case asserts the status, the problem type, that nothing reached
 * Village, and (through `send`) that no secret is in the response.
 */
import { env } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { hashSecret } from "../src/auth/tokens.ts";
import { expectProblem, mint, send, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

type TokenName = "write" | "phoneOnly" | "firstOnly" | "exampleCom" | "subdomains" | "auditOnly" | "expired";

interface Attack {
  owasp: string;
  name: string;
  method?: string;
  path?: string;
  /** Which token to send as `Authorization: Bearer …`; omit for none. */
  token?: TokenName;
  headers?: Record<string, string>;
  /** A string is sent verbatim; anything else as JSON. Default: a valid phone change. */
  body?: unknown;
  status: number;
  type: string;
}

const API1 = "API1:2023 Broken Object Level Authorization";
const API2 = "API2:2023 Broken Authentication";
const API3 = "API3:2023 Broken Object Property Level Authorization";
const API4 = "API4:2023 Unrestricted Resource Consumption";
const API5 = "API5:2023 Broken Function Level Authorization";
const API7 = "API7:2023 Server Side Request Forgery";
const API8 = "API8:2023 Security Misconfiguration";

const ok = { phone_number: "+12025550143" };
const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

const ATTACKS: Attack[] = [
  // API1: reaching users outside the token's email domains.
  {
    owasp: API1,
    name: "other domain",
    path: "/users/a@other.com",
    token: "exampleCom",
    status: 403,
    type: "forbidden",
  },
  {
    owasp: API1,
    name: "look-alike suffix",
    path: "/users/a@example.com.evil.test",
    token: "exampleCom",
    status: 403,
    type: "forbidden",
  },
  {
    owasp: API1,
    name: "look-alike hyphen",
    path: "/users/a@evil-example.com",
    token: "exampleCom",
    status: 403,
    type: "forbidden",
  },
  {
    owasp: API1,
    name: "look-alike prefix",
    path: "/users/a@myexample.com",
    token: "exampleCom",
    status: 403,
    type: "forbidden",
  },
  {
    owasp: API1,
    name: "subdomain on exact grant",
    path: "/users/a@sub.example.com",
    token: "exampleCom",
    status: 403,
    type: "forbidden",
  },
  {
    owasp: API1,
    name: "apex on wildcard grant",
    path: "/users/a@example.com",
    token: "subdomains",
    status: 403,
    type: "forbidden",
  },
  {
    owasp: API1,
    name: "wildcard look-alike",
    path: "/users/a@evilexample.com",
    token: "subdomains",
    status: 403,
    type: "forbidden",
  },
  {
    owasp: API1,
    name: "case trick on other domain",
    path: "/users/a@OTHER.COM",
    token: "exampleCom",
    status: 403,
    type: "forbidden",
  },
  {
    owasp: API1,
    name: "second @ smuggles a domain",
    path: "/users/a%40example.com@other.com",
    token: "exampleCom",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API1,
    name: "trailing-dot domain",
    path: "/users/a@example.com.",
    token: "exampleCom",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API1,
    name: "NUL before the real domain",
    path: "/users/a@example.com%00.other.com",
    token: "exampleCom",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API1,
    name: "unicode look-alike domain",
    path: "/users/a@ex%D0%B0mple.com",
    token: "exampleCom",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API1,
    name: "comment syntax",
    path: "/users/a(comment)@example.com",
    token: "exampleCom",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API1,
    name: "quoted local part",
    path: '/users/"a@other.com"@example.com',
    token: "exampleCom",
    status: 400,
    type: "invalid-email",
  },

  // API2: credentials in the wrong place or the wrong shape.
  { owasp: API2, name: "no credentials", status: 401, type: "unauthorized" },
  {
    owasp: API2,
    name: "token in the query string",
    path: "/users/ada@example.com?access_token=x",
    token: "write",
    status: 400,
    type: "invalid-request",
  },
  {
    owasp: API2,
    name: "token in a cookie",
    headers: { Cookie: "access_token=vge_x" },
    status: 401,
    type: "unauthorized",
  },
  {
    owasp: API2,
    name: "token in X-Api-Key",
    headers: { "X-Api-Key": "vge_x" },
    status: 401,
    type: "unauthorized",
  },
  {
    owasp: API2,
    name: "Basic scheme (no bearer credentials: a plain 401 challenge)",
    headers: { Authorization: "Basic dXNlcjpwYXNz" },
    status: 401,
    type: "unauthorized",
  },
  {
    owasp: API2,
    name: "two credentials in one header",
    headers: { Authorization: "Bearer a, Bearer b" },
    status: 400,
    type: "invalid-request",
  },
  {
    owasp: API2,
    name: "tab instead of space",
    headers: { Authorization: "Bearer\tvge_x" },
    status: 400,
    type: "invalid-request",
  },
  {
    owasp: API2,
    name: "empty bearer",
    headers: { Authorization: "Bearer " },
    status: 400,
    type: "invalid-request",
  },
  {
    owasp: API2,
    name: "oversized Authorization header",
    headers: { Authorization: `Bearer ${"a".repeat(8000)}` },
    status: 401,
    type: "unauthorized",
  },
  {
    owasp: API2,
    name: "forged token with valid shape",
    headers: { Authorization: `Bearer vge_${"0".repeat(72)}` },
    status: 401,
    type: "unauthorized",
  },
  {
    owasp: API2,
    name: "JWT-looking garbage",
    headers: { Authorization: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0." },
    status: 401,
    type: "unauthorized",
  },
  { owasp: API2, name: "expired token", token: "expired", status: 401, type: "unauthorized" },
  {
    owasp: API2,
    name: "SQL-ish token",
    headers: { Authorization: "Bearer '-OR-1=1--" },
    status: 400,
    type: "invalid-request",
  },

  // API3: changing properties the token may not change, or that do not exist.
  {
    owasp: API3,
    name: "field outside the token's scope",
    token: "firstOnly",
    body: ok,
    status: 403,
    type: "forbidden",
  },
  {
    owasp: API3,
    name: "allowed plus forbidden field",
    token: "phoneOnly",
    body: { ...ok, first_name: "Eve" },
    status: 403,
    type: "forbidden",
  },
  {
    owasp: API3,
    name: "duplicate key smuggles a forbidden field",
    token: "firstOnly",
    body: '{"first_name":"A","phone_number":"+12025550143","first_name":"B"}',
    status: 403,
    type: "forbidden",
  },
  {
    owasp: API3,
    name: "unknown field (email)",
    token: "write",
    body: { ...ok, email: "eve@evil.test" },
    status: 400,
    type: "validation-failed",
  },
  {
    owasp: API3,
    name: "unknown field (status)",
    token: "write",
    body: { ...ok, status: "admin" },
    status: 400,
    type: "validation-failed",
  },
  {
    owasp: API3,
    name: "__proto__ pollution",
    token: "write",
    body: '{"__proto__":{"isAdmin":true},"first_name":"A"}',
    status: 400,
    type: "validation-failed",
  },
  {
    owasp: API3,
    name: "constructor pollution",
    token: "write",
    body: '{"constructor":{"prototype":{}},"first_name":"A"}',
    status: 400,
    type: "validation-failed",
  },
  {
    owasp: API3,
    name: "case variant of a field",
    token: "write",
    body: { Phone_Number: "+12025550143" },
    status: 400,
    type: "validation-failed",
  },
  {
    owasp: API3,
    name: "homoglyph field name",
    token: "write",
    body: { "ph\u043ene_number": "+12025550143" },
    status: 400,
    type: "validation-failed",
  },
  {
    owasp: API3,
    name: "nested object",
    token: "write",
    body: { user: ok },
    status: 400,
    type: "validation-failed",
  },
  {
    owasp: API3,
    name: "field as object",
    token: "write",
    body: { first_name: { $ne: "" } },
    status: 400,
    type: "validation-failed",
  },
  {
    owasp: API3,
    name: "null to erase a field",
    token: "write",
    body: { phone_number: null },
    status: 400,
    type: "validation-failed",
  },
  { owasp: API3, name: "array body", token: "write", body: [ok], status: 400, type: "validation-failed" },

  // API4: bodies, strings and structures built to cost.
  {
    owasp: API4,
    name: "body over the cap",
    token: "write",
    body: { first_name: "a".repeat(9000) },
    status: 413,
    type: "payload-too-large",
  },
  {
    owasp: API4,
    name: "deep nesting",
    token: "write",
    body: nested(3000),
    status: 400,
    type: "validation-failed",
  },
  {
    owasp: API4,
    name: "huge number",
    token: "write",
    body: '{"first_name":1e999999}',
    status: 400,
    type: "validation-failed",
  },
  {
    owasp: API4,
    name: "long name",
    token: "write",
    body: { first_name: "a".repeat(101) },
    status: 400,
    type: "validation-failed",
  },
  {
    owasp: API4,
    name: "many unknown keys",
    token: "write",
    body: Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, 1])),
    status: 400,
    type: "validation-failed",
  },
  {
    owasp: API4,
    name: "long phone",
    token: "write",
    body: { phone_number: `+1${"2".repeat(40)}` },
    status: 400,
    type: "validation-failed",
  },
  {
    owasp: API4,
    name: "overlong email",
    path: `/users/${"a".repeat(64)}@${"b".repeat(200)}.com`,
    token: "write",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API4,
    name: "not JSON at all",
    token: "write",
    body: "first_name=Eve",
    status: 400,
    type: "malformed-json",
  },
  {
    owasp: API4,
    name: "form content type",
    token: "write",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: "first_name=Eve",
    status: 415,
    type: "unsupported-media-type",
  },

  // API5: functions the caller may not use.
  {
    owasp: API5,
    name: "audit-only token changes a user",
    token: "auditOnly",
    status: 403,
    type: "forbidden",
  },
  {
    owasp: API5,
    name: "DELETE a user",
    method: "DELETE",
    token: "write",
    status: 405,
    type: "method-not-allowed",
  },
  { owasp: API5, name: "PUT a user", method: "PUT", token: "write", status: 405, type: "method-not-allowed" },
  {
    owasp: API5,
    name: "POST with method override",
    method: "POST",
    token: "write",
    headers: { "X-HTTP-Method-Override": "PATCH" },
    status: 405,
    type: "method-not-allowed",
  },
  {
    owasp: API5,
    name: "PATCH the collection",
    path: "/users",
    token: "write",
    status: 404,
    type: "not-found",
  },
  {
    owasp: API5,
    name: "PATCH a network path",
    path: "/networks/x/users/ada@example.com",
    token: "write",
    status: 404,
    type: "not-found",
  },

  // API7: bending the upstream URL.
  {
    owasp: API7,
    name: "encoded slash",
    path: "/users/a%2F..%2Fadmin@example.com",
    token: "write",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API7,
    name: "encoded backslash",
    path: "/users/a%5Cb@example.com",
    token: "write",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API7,
    name: "encoded question mark",
    path: "/users/a%3Fx=1@example.com",
    token: "write",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API7,
    name: "encoded hash",
    path: "/users/a%23x@example.com",
    token: "write",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API7,
    name: "CRLF injection",
    path: "/users/a%0d%0aHost:evil@example.com",
    token: "write",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API7,
    name: "double-encoded slash",
    path: "/users/a%252Fb@example.com",
    token: "write",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API7,
    name: "broken encoding",
    path: "/users/a%E0%A4%A@example.com",
    token: "write",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API7,
    name: "dot segments",
    path: "/users/../admin",
    token: "write",
    status: 404,
    type: "not-found",
  },
  {
    owasp: API7,
    name: "encoded dot segments",
    path: "/users/%2e%2e/%2e%2e/admin",
    token: "write",
    status: 404,
    type: "not-found",
  },
  {
    owasp: API7,
    name: "absolute URL as email",
    path: "/users/http:%2F%2Fevil.test%2F@example.com",
    token: "write",
    status: 400,
    type: "invalid-email",
  },
  {
    owasp: API7,
    name: "userinfo trick",
    path: "/users/ada@example.com%40evil.test",
    token: "write",
    status: 400,
    type: "invalid-email",
  },

  // API8: the surface answers only what it should.
  { owasp: API8, name: "TRACE", method: "TRACE", token: "write", status: 405, type: "method-not-allowed" },
  { owasp: API8, name: "unknown route", path: "/admin", method: "GET", status: 404, type: "not-found" },
  {
    owasp: API8,
    name: "trailing slash",
    path: "/users/ada@example.com/",
    token: "write",
    status: 404,
    type: "not-found",
  },
  {
    owasp: API8,
    name: "extra segment",
    path: "/users/ada@example.com/roles",
    token: "write",
    status: 404,
    type: "not-found",
  },
];

const tokens = {} as Record<TokenName, string>;

beforeAll(async () => {
  tokens.write = await mint(["users:write"]);
  tokens.phoneOnly = await mint(["users:write:phone_number"]);
  tokens.firstOnly = await mint(["users:write:first_name"]);
  tokens.exampleCom = await mint(["users:write"], { domains: ["example.com"] });
  tokens.subdomains = await mint(["users:write"], { domains: ["*.example.com"] });
  tokens.auditOnly = await mint(["audit:read"]);
  // An expired token: minted, then its stored record backdated.
  tokens.expired = await mint(["users:write"]);
  const key = `token:${await hashSecret(tokens.expired)}`;
  const record = await env.TOKENS.get<Record<string, unknown>>(key, "json");
  await env.TOKENS.put(key, JSON.stringify({ ...record, expires_at: "2020-01-01T00:00:00.000Z" }));
});

describe("hostile requests (OWASP API Security Top 10, 2023)", () => {
  it("covers at least 60 attacks across the categories", () => {
    expect(ATTACKS.length).toBeGreaterThanOrEqual(60);
    expect(new Set(ATTACKS.map((a) => a.owasp)).size).toBeGreaterThanOrEqual(7);
  });

  it.each(ATTACKS.map((a) => [`${a.owasp.slice(0, 4)} ${a.name}`, a] as const))(
    "%s",
    async (_label, attack) => {
      const calls = spyUpstream();
      const headers = new Headers({ "Content-Type": "application/json", ...attack.headers });
      if (attack.token) headers.set("Authorization", `Bearer ${tokens[attack.token]}`);
      const method = attack.method ?? "PATCH";
      const body = attack.body ?? ok;
      const res = await send(attack.path ?? "/users/ada@example.com", {
        method,
        headers,
        body:
          method === "GET" || method === "TRACE"
            ? undefined
            : typeof body === "string"
              ? body
              : JSON.stringify(body),
      });
      await expectProblem(res, attack.status, attack.type);
      expect(calls, "a hostile request reached Village").toHaveLength(0);
    },
  );
});

describe("hostile requests that must pass, but only to the configured Village", () => {
  it("ignores forged Host, X-Forwarded-Host and Forwarded headers", async () => {
    const calls = spyUpstream();
    const res = await send("/users/ada@example.com", {
      method: "PATCH",
      headers: {
        Authorization: `Bearer ${tokens.write}`,
        "Content-Type": "application/json",
        Host: "evil.test",
        "X-Forwarded-Host": "evil.test",
        Forwarded: "host=evil.test;proto=http",
        "X-Original-URL": "/admin",
        "X-Rewrite-URL": "/admin",
      },
      body: JSON.stringify(ok),
    });
    expect(res.status).toBe(202);
    expect(calls).toHaveLength(1);
    expect(new URL(calls[0].url).origin).toBe(new URL(env.VILLAGE_API_BASE).origin);
    expect(Object.keys(calls[0].headers).sort()).toEqual([
      "accept",
      "authorization",
      "content-type",
      "user-agent",
      "x-request-id",
    ]);
  });

  it("forwards the last of duplicate keys, the same value it answers with", async () => {
    const calls = spyUpstream();
    const res = await send("/users/ada@example.com", {
      method: "PATCH",
      headers: { Authorization: `Bearer ${tokens.write}`, "Content-Type": "application/json" },
      body: '{"first_name":"Mallory","first_name":"Alice"}',
    });
    expect(res.status).toBe(202);
    const answered = (await res.json()) as { changes: { first_name: string } };
    expect(JSON.parse(calls[0].body)).toEqual({ first_name: "Alice" });
    expect(answered.changes.first_name).toBe("Alice");
  });

  it("never follows an upstream redirect: the key goes to one host only", async () => {
    const calls = spyUpstream(
      () => new Response(null, { status: 307, headers: { Location: "https://evil.test/steal" } }),
    );
    const res = await send("/users/ada@example.com", {
      method: "PATCH",
      headers: { Authorization: `Bearer ${tokens.write}`, "Content-Type": "application/json" },
      body: JSON.stringify(ok),
    });
    await expectProblem(res, 502, "bad-gateway");
    expect(calls).toHaveLength(1);
    expect(res.headers.get("Location")).toBeNull();
  });

  it("never passes upstream headers or bodies through", async () => {
    spyUpstream(
      () =>
        new Response('{"secret":"UPSTREAM-MARKER"}', {
          status: 500,
          headers: { "Set-Cookie": "village=1", "X-Village-Debug": "UPSTREAM-MARKER" },
        }),
    );
    const res = await send("/users/ada@example.com", {
      method: "PATCH",
      headers: { Authorization: `Bearer ${tokens.write}`, "Content-Type": "application/json" },
      body: JSON.stringify(ok),
    });
    await expectProblem(res, 502, "bad-gateway");
    expect(res.headers.get("Set-Cookie")).toBeNull();
    expect(JSON.stringify([...res.headers])).not.toContain("UPSTREAM-MARKER");
  });
});
