import { env } from "cloudflare:test";
import { Hono } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import { recordRefusal, refusalOutcome } from "../src/audit/record.ts";
import { type AuditEntry, auditKeys } from "../src/audit/store.ts";
import { bearerAuth } from "../src/auth/authenticate.ts";
import { limitCaller } from "../src/auth/rate-limit.ts";
import { configOf } from "../src/config.ts";
import type { AppEnv } from "../src/http/context.ts";
import { onError, ProblemError } from "../src/http/errors.ts";
import { requestId } from "../src/http/request-id.ts";
import { auditKeysUnder, dumpAudit, mintWithId, review, uniqueEmail } from "./audit-helpers.ts";
import { patchUser, send, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

/** The one entry a token has in the trail (asserting there is exactly one). */
async function onlyEntryOf(tokenId: string): Promise<AuditEntry> {
  const keys = await auditKeysUnder(auditKeys.byToken(tokenId));
  expect(keys).toHaveLength(1);
  const id = keys[0].slice(auditKeys.byToken(tokenId).length);
  const entry = await env.AUDIT.get<AuditEntry>(auditKeys.entry(id), "json");
  expect(entry).not.toBeNull();
  expect(await env.AUDIT.get(auditKeys.outcome(id))).toBeNull();
  return entry as AuditEntry;
}

describe("a refused request with a valid token gets exactly one entry", () => {
  const cases: {
    name: string;
    scopes: string[];
    domains?: string[];
    origins?: string[];
    email?: string;
    body: unknown;
    headers?: Record<string, string>;
    status: number;
    outcome: string;
    reason: string;
    fields: string[];
    hasEmail: boolean;
    values?: Record<string, string>;
  }[] = [
    {
      name: "a token without any users:write scope",
      scopes: ["audit:read"],
      body: { first_name: "Ada" },
      status: 403,
      outcome: "denied",
      reason: "scope",
      fields: [],
      hasEmail: true,
    },
    {
      name: "a field the token may not write",
      scopes: ["users:write:phone_number"],
      body: { first_name: "Adalind", phone_number: "+12025550143" },
      status: 403,
      outcome: "denied",
      reason: "field_scope",
      fields: ["first_name", "phone_number"],
      hasEmail: true,
      values: { first_name: "A*****d", phone_number: "+1********43" },
    },
    {
      name: "a domain the token may not touch",
      scopes: ["users:write"],
      domains: ["example.org"],
      body: { first_name: "Ada" },
      status: 403,
      outcome: "denied",
      reason: "domain",
      fields: ["first_name"],
      hasEmail: true,
      values: { first_name: "A**" },
    },
    {
      name: "an origin-bound token from another origin",
      scopes: ["users:write"],
      origins: ["https://app.example.com"],
      body: { first_name: "Ada" },
      headers: { Origin: "https://evil.example.net" },
      status: 403,
      outcome: "denied",
      reason: "origin",
      fields: [],
      hasEmail: true,
    },
    {
      name: "a server token from a browser",
      scopes: ["users:write"],
      body: { first_name: "Ada" },
      headers: { Origin: "https://app.example.com" },
      status: 403,
      outcome: "denied",
      reason: "server_token_from_browser",
      fields: [],
      hasEmail: true,
    },
    {
      name: "an invalid email in the path",
      scopes: ["users:write"],
      email: "not-an-email",
      body: { first_name: "Ada" },
      status: 400,
      outcome: "invalid",
      reason: "invalid_email",
      fields: [],
      hasEmail: false,
    },
    {
      name: "a field that fails validation",
      scopes: ["users:write"],
      body: { first_name: "Ada", phone_number: "12", extra_secret_key: "x" },
      status: 400,
      outcome: "invalid",
      reason: "validation",
      fields: ["first_name", "phone_number"],
      hasEmail: true,
    },
    {
      name: "malformed JSON",
      scopes: ["users:write"],
      body: "{not json",
      status: 400,
      outcome: "invalid",
      reason: "malformed_json",
      fields: [],
      hasEmail: true,
    },
    {
      name: "a body that is not JSON",
      scopes: ["users:write"],
      body: "first_name=Ada",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      status: 415,
      outcome: "invalid",
      reason: "unsupported_media_type",
      fields: [],
      hasEmail: true,
    },
  ];

  for (const c of cases) {
    it(c.name, async () => {
      const upstream = spyUpstream();
      const token = await mintWithId(c.scopes, `token for ${c.name}`, {
        domains: c.domains,
        origins: c.origins,
      });
      const email = c.email ?? uniqueEmail();
      const res = await patchUser(email, c.body, token.secret, { headers: c.headers });
      expect(res.status).toBe(c.status);
      expect(upstream).toHaveLength(0);
      const entry = await onlyEntryOf(token.id);
      expect(entry).toMatchObject({
        request_id: res.headers.get("X-Request-Id"),
        token_id: token.id,
        outcome: c.outcome,
        reason: c.reason,
        fields: c.fields,
      });
      expect(entry.values).toEqual(c.values);
      if (c.hasEmail) {
        expect(entry.email).toBe(email);
        expect(await auditKeysUnder(auditKeys.byEmail(email))).toHaveLength(1);
        expect((await review({ email })).entries.map((e) => e.outcome)).toEqual([c.outcome]);
      } else {
        expect(entry.email).toBeUndefined();
      }
      expect(JSON.stringify(entry)).not.toContain("extra_secret_key");
    });
  }
});

describe("requests without a valid token", () => {
  it("write nothing to the audit trail", async () => {
    const calls = spyUpstream();
    const before = await dumpAudit();
    const email = uniqueEmail();
    const attempts: [string, Record<string, string>][] = [
      ["no token", {}],
      ["unknown token", { Authorization: `Bearer vge_${"0".repeat(64)}00000000` }],
      ["malformed header", { Authorization: "Basic abc" }],
      ["garbage token", { Authorization: "Bearer nonsense" }],
    ];
    for (const [, headers] of attempts) {
      const res = await patchUser(email, { first_name: "Ada" }, undefined, { headers });
      expect([400, 401]).toContain(res.status);
    }
    expect(calls).toHaveLength(0);
    expect(await dumpAudit()).toEqual(before);
  });
});

describe("the refusal hook", () => {
  it("maps reasons to outcomes and skips server errors, unaudited reasons and skipAudit refusals", () => {
    expect(refusalOutcome(new ProblemError("forbidden", "x"))).toBe("denied");
    expect(refusalOutcome(new ProblemError("forbidden", "x", { reason: "origin" }))).toBe("denied");
    expect(refusalOutcome(new ProblemError("validation-failed", "x"))).toBe("invalid");
    expect(refusalOutcome(new ProblemError("payload-too-large", "x"))).toBe("invalid");
    expect(refusalOutcome(new ProblemError("unauthorized", "x"))).toBeUndefined();
    expect(refusalOutcome(new ProblemError("rate-limited", "x"))).toBeUndefined();
    expect(
      refusalOutcome(new ProblemError("invalid-request", "x", { reason: "client_aborted" })),
    ).toBeUndefined();
    expect(refusalOutcome(new ProblemError("forbidden", "x", { skipAudit: true }))).toBeUndefined();
    expect(refusalOutcome(new ProblemError("service-unavailable", "x"))).toBeUndefined();
    expect(refusalOutcome(new ProblemError("internal", "x"))).toBeUndefined();
  });

  it("writes nothing for a skipAudit refusal or before the caller limiter admitted the request", async () => {
    const app = new Hono<AppEnv>();
    app.use(requestId());
    app.patch("/users/:email", bearerAuth(), async (c) => {
      c.set("config", configOf(c.env));
      if (c.req.query("limit") === "1") await limitCaller(c);
      const err = new ProblemError("forbidden", "No.", { skipAudit: c.req.query("skip") === "1" });
      await recordRefusal(c, err);
      throw err;
    });
    app.onError(onError);
    const { secret, id } = await mintWithId(["users:write"]);
    const call = async (query: string) => {
      const { createExecutionContext, waitOnExecutionContext } = await import("cloudflare:test");
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request(`https://edge.test/users/${uniqueEmail()}?${query}`, {
          method: "PATCH",
          headers: { Authorization: `Bearer ${secret}` },
        }),
        env,
        ctx,
      );
      await waitOnExecutionContext(ctx);
      expect(res.status).toBe(403);
    };
    for (let i = 0; i < 3; i++) await call("skip=1&limit=1");
    for (let i = 0; i < 3; i++) await call("skip=0&limit=0");
    expect(await auditKeysUnder(auditKeys.byToken(id))).toHaveLength(0);
    await call("skip=0&limit=1");
    const entry = await onlyEntryOf(id);
    expect(entry).toMatchObject({ outcome: "denied", reason: "scope" });
  });

  it("keeps the intent's entry single when the upstream then fails (no refusal entry on top)", async () => {
    spyUpstream(() => new Response(null, { status: 404 }));
    const { secret, id } = await mintWithId(["users:write"]);
    const res = await patchUser(uniqueEmail(), { first_name: "Ada" }, secret);
    expect(res.status).toBe(404);
    expect(await auditKeysUnder(auditKeys.byToken(id))).toHaveLength(1);
    const [key] = await auditKeysUnder(auditKeys.byToken(id));
    const outcome = await env.AUDIT.get(auditKeys.outcome(key.slice(-30)), "json");
    expect(outcome).toMatchObject({ outcome: "not_found", upstream_status: 404 });
  });
});

describe("the review API itself", () => {
  it("is not audited", async () => {
    const before = await dumpAudit();
    const { secret } = await mintWithId(["audit:read"]);
    expect((await send("/audit", { headers: { Authorization: `Bearer ${secret}` } })).status).toBe(200);
    const { secret: partner } = await mintWithId(["users:write"]);
    expect((await send("/audit", { headers: { Authorization: `Bearer ${partner}` } })).status).toBe(403);
    expect(await dumpAudit()).toEqual(before);
  });
});
