/**
 * The published contract: served as generated from the current schemas, covering every route
 * and problem type, and every example in it is a real exchange with the running Worker.
 * (Its validity as OpenAPI is checked in Node by `npm run openapi:check`: the validator reads
 * the official schemas from disk, which workerd cannot.)
 */
import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { generateSecret, hashSecret } from "../src/auth/tokens.ts";
import { problemCatalog, problemTypeUri } from "../src/http/errors.ts";
import { app } from "../src/index.ts";
import { MAX_BODY_BYTES } from "../src/users/changes.ts";
import { AuditDetailSchema, AuditPageSchema } from "../tools/openapi/audit.ts";
import { AcceptedSchema, buildOpenApi, ProblemSchema } from "../tools/openapi/document.ts";
import {
  ACCEPTED_EXAMPLES,
  AUDIT_EXAMPLES,
  CHANGE_EXAMPLES,
  NOT_FOUND_EXAMPLE,
  PREFLIGHT_EXAMPLES,
  PROBLEM_EXAMPLES,
  type ProblemBody,
  ROUTE_EXAMPLES,
  TOKEN_EXAMPLES,
} from "../tools/openapi/examples.ts";
import {
  TokenCreatedSchema,
  TokenPageSchema,
  TokenRevokedSchema,
  TokenRotatedSchema,
  TokenViewSchema,
} from "../tools/openapi/tokens.ts";
import { mint, patchUser, send, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

// biome-ignore lint/suspicious/noExplicitAny: the test walks a parsed JSON document
type Json = Record<string, any>;

const served = async (): Promise<Json> => {
  const res = await send("/openapi.json");
  expect(res.status).toBe(200);
  expect(res.headers.get("Content-Type")).toBe("application/json");
  return res.json();
};

const outage = async () => {
  throw new Error("KV unavailable");
};
/** A KV namespace whose reads fail, as during an outage. */
const failingKv = { get: outage, list: outage, getWithMetadata: outage } as unknown as KVNamespace;

/** An Authorization header with a new token of these scopes. */
const bearer = async (scopes: string[]) => ({ Authorization: `Bearer ${await mint(scopes)}` });

const CHANGE = { first_name: "Ada" };

const ADMIN_ON = { TOKEN_ADMIN: "on" } satisfies Partial<Env>;
/** An Authorization header with a new admin token. */
const adminBearer = async () => ({
  Authorization: `Bearer ${await mint(["tokens:admin"], { expiresAt: new Date(Date.now() + 86_400_000) })}`,
});
/** A request to the token API, switched on, as a new admin token. */
const tokenApi = async (method: string, path: string, body?: unknown, bindings: Partial<Env> = {}) =>
  send(path, {
    method,
    headers: {
      ...(await adminBearer()),
      ...(body === undefined ? {} : { "Content-Type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    bindings: { ...ADMIN_ON, ...bindings },
  });
/** The public id of a token minted with these scopes (and expiry, for admin tokens). */
const mintedId = async (scopes: string[]) => {
  const secret = await mint(scopes, { expiresAt: new Date(Date.now() + 86_400_000) });
  const res = await tokenApi("GET", "/tokens?limit=1000");
  const hash = await hashSecret(secret);
  const listed = ((await res.json()) as { tokens: { id: string }[] }).tokens;
  for (const t of listed) {
    const index = await env.TOKENS.get<{ hash: string }>(`token-id:${t.id}`, "json");
    if (index?.hash === hash) return t.id;
  }
  throw new Error("minted token not listed");
};

/** How to get each documented problem from the Worker. */
const REPRODUCE: Record<string, () => Promise<Response>> = {
  "token-in-query": async () =>
    patchUser("ada@example.com?access_token=abc", CHANGE, await mint(["users:write"])),
  "malformed-authorization": () =>
    patchUser("ada@example.com", CHANGE, undefined, { headers: { Authorization: "Bearer a, Bearer b" } }),
  "other-scheme": () =>
    patchUser("ada@example.com", CHANGE, undefined, { headers: { Authorization: "Basic YWRhOmFkYQ==" } }),
  "invalid-email": async () => patchUser("not-an-email", CHANGE, await mint(["users:write"])),
  "malformed-json": async () => patchUser("ada@example.com", "{", await mint(["users:write"])),
  "phone-format": async () =>
    patchUser("ada@example.com", { phone_number: "020 7123 4567" }, await mint(["users:write"])),
  "phone-too-short": async () =>
    patchUser("ada@example.com", { phone_number: "+44 123" }, await mint(["users:write"])),
  "phone-too-long": async () =>
    patchUser("ada@example.com", { phone_number: "+1 202 555 0143 12345" }, await mint(["users:write"])),
  "null-field": async () => patchUser("ada@example.com", { last_name: null }, await mint(["users:write"])),
  "unknown-field": async () =>
    patchUser("ada@example.com", { ...CHANGE, email: "eve@example.com" }, await mint(["users:write"])),
  "empty-change": async () => patchUser("ada@example.com", {}, await mint(["users:write"])),
  "missing-token": () => patchUser("ada@example.com", CHANGE),
  "invalid-token": () => patchUser("ada@example.com", CHANGE, generateSecret()),
  "no-users-scope": async () => patchUser("ada@example.com", CHANGE, await mint(["audit:read"])),
  "field-not-allowed": async () =>
    patchUser("ada@example.com", { phone_number: "+12025550143" }, await mint(["users:write:first_name"])),
  "domain-not-allowed": async () =>
    patchUser("ada@example.com", CHANGE, await mint(["users:write"], { domains: ["example.org"] })),
  "user-not-found": async () => patchUser("ada@example.com", CHANGE, await mint(["users:write"])),
  "too-large": async () =>
    patchUser(
      "ada@example.com",
      `{"first_name":"${"a".repeat(MAX_BODY_BYTES)}"}`,
      await mint(["users:write"]),
    ),
  "not-json": async () =>
    patchUser("ada@example.com", "first_name=Ada", await mint(["users:write"]), {
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
    }),
  "village-rejected": async () => patchUser("ada@example.com", CHANGE, await mint(["users:write"])),
  misconfigured: () =>
    patchUser("ada@example.com", CHANGE, generateSecret(), { bindings: { VILLAGE_API_KEY: "" } }),
  "village-failed": async () => patchUser("ada@example.com", CHANGE, await mint(["users:write"])),
  "token-store-down": () =>
    patchUser("ada@example.com", CHANGE, generateSecret(), { bindings: { TOKENS: failingKv } }),
  "village-timeout": async () =>
    patchUser("ada@example.com", CHANGE, await mint(["users:write"]), {
      bindings: { UPSTREAM_TIMEOUT_MS: "100" },
    }),
  "audit-bad-query": async () => send("/audit?outcome=nope", { headers: await bearer(["audit:read"]) }),
  "audit-missing-token": () => send("/audit"),
  "audit-rate-limited": async () => {
    const headers = await bearer(["audit:read"]);
    // The real limiter (wrangler.toml's limit), spent by reviews of this one token.
    for (let i = 0; ; i++) {
      const res = await send("/audit", {
        headers,
        bindings: { REVIEW_RATE_LIMITER: env.STRICT_REVIEW_RATE_LIMITER },
      });
      if (res.status === 429 || i > 1000) return res;
    }
  },
  "audit-no-scope": async () => send("/audit", { headers: await bearer(["users:write"]) }),
  "audit-entry-not-found": async () =>
    send("/audit/0000000000000-0000000000000000", { headers: await bearer(["audit:read"]) }),
  "audit-store-down": async () =>
    send("/audit", { headers: await bearer(["audit:read"]), bindings: { AUDIT: failingKv } }),
  "preflight-origin-refused": () =>
    send("/users/ada@example.com", {
      method: "OPTIONS",
      headers: { Origin: "https://elsewhere.example", "Access-Control-Request-Method": "PATCH" },
    }),
  "tokens-off": async () => send("/tokens", { headers: await adminBearer() }),
  "tokens-escalation": () =>
    tokenApi("POST", "/tokens", {
      name: "escalate",
      scopes: ["tokens:admin"],
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    }),
  "tokens-admin-target": async () =>
    tokenApi("POST", `/tokens/${await mintedId(["tokens:admin"])}/rotate`, {}),
  "tokens-invalid-body": () => tokenApi("POST", "/tokens", { name: "x", scopes: ["audit:read"], hash: "00" }),
  "token-not-found": () => tokenApi("GET", "/tokens/tok_0000000000000000"),
  "not-found": () => send("/nowhere"),
  "caller-rate-limited": async () => {
    const token = await mint(["users:write"]);
    const limiter = env.STRICT_TOKEN_RATE_LIMITER;
    // The real limiter (wrangler.toml's limit), spent by refusals that never reach Village.
    for (let i = 0; ; i++) {
      const res = await patchUser("ada@example.com", { nickname: "x" }, token, {
        bindings: { TOKEN_RATE_LIMITER: limiter },
      });
      if (res.status === 429 || i > 1000) return res;
    }
  },
  "phone-rate-limited": async () => {
    const token = await mint(["users:write"]);
    const email = `phone-${crypto.randomUUID()}@example.com`;
    const bindings = { PHONE_RATE_LIMITER: env.STRICT_PHONE_RATE_LIMITER };
    for (let i = 0; i < 3; i++)
      await patchUser(email, { phone_number: `+1202555010${i}` }, token, { bindings });
    return patchUser(email, { phone_number: "+12025550109" }, token, { bindings });
  },
  "method-not-allowed": () => send("/users/ada@example.com"),
};

/** Changes forwarded to the stubbed Village before the answer the example shows. */
const FORWARDED_BEFORE: Record<string, number> = { "phone-rate-limited": 3 };

/** What the stubbed Village answers for the examples that reach it. */
const VILLAGE: Record<string, Parameters<typeof spyUpstream>[0]> = {
  "user-not-found": () => new Response(null, { status: 404 }),
  "village-rejected": () => new Response("{}", { status: 422 }),
  "village-failed": () => new Response("oops", { status: 500 }),
  "village-timeout": (_call, signal) =>
    new Promise((_resolve, reject) => signal?.addEventListener("abort", () => reject(signal.reason))),
};

/** Every example object ({ summary, value }) under `examples` maps in the document, by name. */
function documentedExamples(node: unknown, out = new Map<string, unknown[]>()): Map<string, unknown[]> {
  if (Array.isArray(node)) for (const item of node) documentedExamples(item, out);
  else if (node && typeof node === "object") {
    for (const [key, value] of Object.entries(node)) {
      if (key === "examples" && value && typeof value === "object" && !Array.isArray(value)) {
        for (const [name, example] of Object.entries(value as Json)) {
          out.set(name, [...(out.get(name) ?? []), (example as Json).value]);
        }
      } else documentedExamples(value, out);
    }
  }
  return out;
}

describe("GET /openapi.json", () => {
  it("serves exactly what tools/openapi/document.ts builds from the current schemas (run `npm run openapi`)", async () => {
    expect(await served()).toEqual(buildOpenApi());
  });

  it("documents every route the app serves, and only those", async () => {
    const doc = await served();
    const documented = Object.entries(doc.paths as Json)
      .flatMap(([path, item]) => Object.keys(item as Json).map((method) => `${method.toUpperCase()} ${path}`))
      .sort();
    const routes = [
      ...new Set(
        app.routes
          .filter((r) => r.method !== "ALL")
          .map((r) => `${r.method} ${r.path.replace(/:([A-Za-z_]+)/g, "{$1}")}`),
      ),
    ].sort();
    expect(documented).toEqual(routes);
  });

  it("names every problem type, and only declared security schemes", async () => {
    const doc = await served();
    expect(doc.components.schemas.Problem.properties.type.enum).toEqual(
      problemCatalog().map((p) => problemTypeUri(p.type)),
    );
    expect(doc.components.schemas.Problem.properties.errors.type).toBe("array");
    const schemes = Object.keys(doc.components.securitySchemes);
    for (const item of Object.values(doc.paths as Json)) {
      for (const operation of Object.values(item as Json)) {
        for (const requirement of (operation as Json).security ?? []) {
          for (const name of Object.keys(requirement)) expect(schemes).toContain(name);
        }
      }
    }
  });

  it("has a reproduction below for every documented example, and an example for every reproduction", async () => {
    const names = [...documentedExamples(await served()).keys()].sort();
    const expected = [
      ...new Set([
        ...CHANGE_EXAMPLES.map((e) => e.name),
        ...ACCEPTED_EXAMPLES.map((e) => e.name),
        ...Object.keys(REPRODUCE).filter((name) => name !== NOT_FOUND_EXAMPLE.name),
      ]),
    ].sort();
    expect(names).toEqual(expected);
  });
});

describe("the documented examples are what the Worker does", () => {
  it.each(CHANGE_EXAMPLES.map((e) => [e.name, e] as const))(
    "request example %s is accepted (202) with the documented answer",
    async (name, example) => {
      const calls = spyUpstream();
      const res = await patchUser("ada@example.com", example.value, await mint(["users:write"]));
      expect(res.status).toBe(202);
      const body = AcceptedSchema.parse(await res.json());
      const documented = ACCEPTED_EXAMPLES.find((e) => e.name === name)?.value;
      expect({ ...body, request_id: "" }).toEqual({ ...documented, request_id: "" });
      expect(body.request_id).toBe(res.headers.get("X-Request-Id"));
      expect(calls).toHaveLength(1);
      expect(JSON.parse(calls[0].body)).toEqual(body.changes);
    },
  );

  it.each(
    [
      ...PROBLEM_EXAMPLES,
      ...AUDIT_EXAMPLES,
      ...PREFLIGHT_EXAMPLES,
      ...ROUTE_EXAMPLES,
      ...TOKEN_EXAMPLES,
      NOT_FOUND_EXAMPLE,
    ].map((e) => [e.name, e.value] as const),
  )("problem example %s is the Worker's answer", async (name, documented: ProblemBody) => {
    const calls = spyUpstream(VILLAGE[name]);
    const res = await REPRODUCE[name]();
    expect(res.status).toBe(documented.status);
    expect(res.headers.get("Content-Type")).toBe("application/problem+json");
    const body = ProblemSchema.parse(await res.json());
    expect(body.instance).toBe(res.headers.get("X-Request-Id"));
    expect({ ...body, instance: "" }).toEqual({ ...documented, instance: "" });
    // Only the examples of Village's answers got as far as Village.
    expect(calls.length).toBe((name in VILLAGE ? 1 : 0) + (FORWARDED_BEFORE[name] ?? 0));
  });

  it("the review API's answers fit the documented entry schemas", async () => {
    const token = await mint(["users:write"]);
    spyUpstream();
    expect((await patchUser("ada@example.com", { last_name: "King" }, token)).status).toBe(202);
    expect((await patchUser("ada@example.com", { nickname: "x" }, token)).status).toBe(400);
    const headers = await bearer(["audit:read"]);
    const page = AuditPageSchema.parse(
      await (await send("/audit?email=ada@example.com", { headers })).json(),
    );
    expect(page.entries.length).toBeGreaterThanOrEqual(2);
    for (const entry of page.entries.slice(0, 5)) {
      const res = await send(`/audit/${entry.id}`, { headers });
      expect(res.status).toBe(200);
      AuditDetailSchema.parse(await res.json());
    }
  });

  it("the token API's answers fit the documented schemas", async () => {
    const created = TokenCreatedSchema.parse(
      await (await tokenApi("POST", "/tokens", { name: "contract", scopes: ["audit:read"] })).json(),
    );
    TokenPageSchema.parse(await (await tokenApi("GET", "/tokens?limit=5")).json());
    TokenViewSchema.parse(await (await tokenApi("GET", `/tokens/${created.id}`)).json());
    TokenRotatedSchema.parse(
      await (await tokenApi("POST", `/tokens/${created.id}/rotate`, { overlap_seconds: 60 })).json(),
    );
    TokenRevokedSchema.parse(await (await tokenApi("POST", `/tokens/${created.id}/revoke`)).json());
    const page = AuditPageSchema.parse(
      await (await send(`/audit?token=${created.id}`, { headers: await bearer(["audit:read"]) })).json(),
    );
    expect(page.entries.map((e) => e.event)).toEqual(["token.revoke", "token.rotate", "token.create"]);
    for (const entry of page.entries) {
      const res = await send(`/audit/${entry.id}`, { headers: await bearer(["audit:read"]) });
      AuditDetailSchema.parse(await res.json());
    }
  });

  it("the path parameter example names a user the local sandbox has", async () => {
    const doc = await served();
    const example = doc.paths["/users/{email}"].patch.parameters[0].example;
    const res = await patchUser(example, { first_name: "Ada" }, await mint(["users:write"]));
    expect(res.status).toBe(202);
    expect(env.VILLAGE_API_BASE).toMatch(/^http:\/\/127\.0\.0\.1:/);
  });
});
