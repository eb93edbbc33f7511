/**
 * The token management API (`/tokens`, src/tokens/routes.ts): every route, every refusal, each
 * escalation attempt, rotation overlap (time controlled through the old secret's record expiry,
 * never by sleeping), the TOKEN_ADMIN switch, the caller limiter, and the lifecycle entries.
 * Refused requests are checked to reach no upstream and to write nothing to TOKENS.
 */
import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AuditDetail } from "../src/audit/store.ts";
import { findToken, hashSecret, MAX_OVERLAP_S, type TokenRecord } from "../src/auth/tokens.ts";
import { review, reviewOne } from "./audit-helpers.ts";
import { expectProblem, mint, patchUser, type SendOptions, send, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

// biome-ignore lint/suspicious/noExplicitAny: the tests read parsed JSON answers
type Json = Record<string, any>;
/** A response's JSON body. */
const jsonOf = async (res: Response): Promise<Json> => (await res.json()) as Json;

const ON = { TOKEN_ADMIN: "on" } satisfies Partial<Env>;
const DAY = 86_400_000;

/** A KV namespace that counts the writes made through it. */
function counting(kv: KVNamespace) {
  const writes: string[] = [];
  const wrapped = new Proxy(kv, {
    get(target, key) {
      const value = Reflect.get(target, key);
      if (typeof value !== "function") return value;
      if (key === "put" || key === "delete") {
        return (...args: unknown[]) => {
          writes.push(`${String(key)} ${String(args[0])}`);
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
  return { kv: wrapped, writes };
}

/** A fresh admin token (its secret and public id). */
async function adminToken(name = "admin"): Promise<{ secret: string; id: string }> {
  const secret = await mint(["tokens:admin"], { name, expiresAt: new Date(Date.now() + DAY) });
  const record = await findToken(env.TOKENS, secret);
  if (!record) throw new Error("no admin record");
  return { secret, id: record.id };
}

/** A request to the admin API, switched on, with this bearer (and JSON body when given). */
function call(
  method: string,
  path: string,
  secret: string | undefined,
  body?: unknown,
  options: SendOptions = {},
): Promise<Response> {
  const headers = new Headers(options.headers);
  if (secret !== undefined) headers.set("Authorization", `Bearer ${secret}`);
  if (body !== undefined && !headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  return send(path, {
    method,
    ...options,
    headers,
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    bindings: { ...ON, ...options.bindings },
  });
}

interface Created {
  token: string;
  id: string;
  record: TokenRecord;
}

async function create(admin: string, body: Record<string, unknown>): Promise<Created> {
  const res = await call("POST", "/tokens", admin, body);
  expect(res.status, await res.clone().text()).toBe(201);
  return res.json();
}

const unique = (label: string) => `${label} ${crypto.randomUUID().slice(0, 8)}`;

/** The lifecycle entries of a token, newest first, from the review API. */
async function lifecycle(id: string) {
  const page = await review({ token: id });
  return page.entries.filter((e) => e.event !== undefined);
}

describe("the TOKEN_ADMIN switch", () => {
  it("off (wrangler.toml's value) or unset: every route answers 404 as a path that does not exist, before reading KV", async () => {
    const admin = await adminToken();
    const tokens = counting(env.TOKENS);
    const getSpy = vi.spyOn(tokens.kv, "get");
    const listSpy = vi.spyOn(tokens.kv, "list");
    for (const value of ["off", ""]) {
      for (const [method, path] of [
        ["POST", "/tokens"],
        ["GET", "/tokens"],
        ["GET", "/tokens/tok_0000000000000000"],
        ["POST", "/tokens/tok_0000000000000000/revoke"],
        ["POST", "/tokens/tok_0000000000000000/rotate"],
      ]) {
        const res = await call(method, path, admin.secret, method === "POST" ? {} : undefined, {
          bindings: { TOKEN_ADMIN: value, TOKENS: tokens.kv },
        });
        const problem = await expectProblem(res, 404, "not-found");
        expect(problem.detail).toBe("No such route.");
      }
    }
    expect(env.TOKEN_ADMIN).toBe("off");
    expect(getSpy).not.toHaveBeenCalled();
    expect(listSpy).not.toHaveBeenCalled();
    expect(tokens.writes).toEqual([]);
  });

  it("a value other than on/off is a misconfiguration: 500, generic body", async () => {
    const admin = await adminToken();
    const res = await call("GET", "/tokens", admin.secret, undefined, { bindings: { TOKEN_ADMIN: "yes" } });
    const problem = await expectProblem(res, 500, "internal");
    expect(problem.detail).toBe("The service is misconfigured.");
  });
});

describe("POST /tokens", () => {
  it("creates a token and answers its secret once; the token works at once; list and show never carry it", async () => {
    const admin = await adminToken();
    const calls = spyUpstream();
    const name = unique("partner");
    const created = await create(admin.secret, {
      name,
      scopes: ["users:write:first_name"],
      domains: ["example.com"],
      expires_at: new Date(Date.now() + 30 * DAY).toISOString(),
    });
    expect(created.token).toMatch(/^vge_[0-9a-f]{72}$/);
    expect(created.record).toMatchObject({ id: created.id, name, scopes: ["users:write:first_name"] });
    expect((await patchUser("ada@example.com", { first_name: "Ada" }, created.token)).status).toBe(202);
    expect(calls).toHaveLength(1);
    const hash = await hashSecret(created.token);
    for (const path of [`/tokens/${created.id}`, "/tokens?limit=1000"]) {
      const text = await (await call("GET", path, admin.secret)).text();
      expect(text).toContain(created.id);
      expect(text).not.toContain(created.token);
      expect(text).not.toContain(hash);
    }
  });

  it("refuses without a token (401) and with a token lacking tokens:admin (403), writing no token", async () => {
    const calls = spyUpstream();
    const tokens = counting(env.TOKENS);
    const body = { name: "x", scopes: ["users:write"] };
    await expectProblem(
      await call("POST", "/tokens", undefined, body, { bindings: { TOKENS: tokens.kv } }),
      401,
      "unauthorized",
    );
    for (const scopes of [["users:write"], ["audit:read"]]) {
      const res = await call("POST", "/tokens", await mint(scopes), body, {
        bindings: { TOKENS: tokens.kv },
      });
      const problem = await expectProblem(res, 403, "forbidden");
      expect(problem.detail).toBe("This token lacks the tokens:admin scope.");
      expect(res.headers.get("WWW-Authenticate")).toContain('scope="tokens:admin"');
    }
    expect(tokens.writes).toEqual([]);
    expect(calls).toHaveLength(0);
  });

  it("refuses an admin token presented with an Origin (admin tokens are for servers), and records it", async () => {
    const admin = await adminToken();
    const tokens = counting(env.TOKENS);
    const res = await call(
      "POST",
      "/tokens",
      admin.secret,
      { name: "x", scopes: ["users:write"] },
      {
        headers: { Origin: "https://app.example.com" },
        bindings: { TOKENS: tokens.kv },
      },
    );
    await expectProblem(res, 403, "forbidden");
    expect(tokens.writes).toEqual([]);
    const [entry] = await lifecycle(admin.id);
    expect(entry).toMatchObject({
      event: "token.create",
      outcome: "denied",
      reason: "server_token_from_browser",
    });
  });

  it.each([
    ["an unknown field", { name: "x", scopes: ["users:write"], hash: "00" }, "hash"],
    ["an unknown scope", { name: "x", scopes: ["users:read"] }, "scopes.0"],
    ["no scope", { name: "x", scopes: [] }, "scopes"],
    ["an empty name", { name: "", scopes: ["users:write"] }, "name"],
    ["a control character in the name", { name: "a\u001b[2Jb", scopes: ["users:write"] }, "name"],
    ["a date that is not ISO", { name: "x", scopes: ["users:write"], expires_at: "tomorrow" }, "expires_at"],
    ["an invalid domain", { name: "x", scopes: ["users:write"], domains: ["not a domain"] }, ""],
    ["an origin with a path", { name: "x", scopes: ["users:write"], origins: ["https://a.example/x"] }, ""],
    ["an expiry in the past", { name: "x", scopes: ["users:write"], expires_at: "2020-01-01T00:00:00Z" }, ""],
  ])("refuses %s with 400 validation-failed, writing no token", async (_label, body, field) => {
    const admin = await adminToken();
    const tokens = counting(env.TOKENS);
    const res = await call("POST", "/tokens", admin.secret, body, { bindings: { TOKENS: tokens.kv } });
    const problem = await expectProblem(res, 400, "validation-failed");
    expect(problem.errors?.map((e) => e.field)).toContain(field);
    expect(tokens.writes).toEqual([]);
  });

  it("refuses a body that is not JSON (415) or not parseable (400)", async () => {
    const admin = await adminToken();
    await expectProblem(
      await call("POST", "/tokens", admin.secret, "name=x", { headers: { "Content-Type": "text/plain" } }),
      415,
      "unsupported-media-type",
    );
    await expectProblem(await call("POST", "/tokens", admin.secret, "{"), 400, "malformed-json");
  });
});

describe("no escalation", () => {
  it("an admin token cannot create a token holding tokens:admin, alone or with other scopes; the attempt is recorded", async () => {
    const admin = await adminToken();
    const tokens = counting(env.TOKENS);
    const audit = counting(env.AUDIT);
    for (const scopes of [["tokens:admin"], ["users:write", "tokens:admin"]]) {
      const res = await call(
        "POST",
        "/tokens",
        admin.secret,
        { name: "escalate", scopes, expires_at: new Date(Date.now() + DAY).toISOString() },
        { bindings: { TOKENS: tokens.kv, AUDIT: audit.kv } },
      );
      const problem = await expectProblem(res, 403, "forbidden");
      expect(problem.detail).toBe(
        "A token made over HTTP may not hold tokens:admin; only the token CLI's direct KV path makes one.",
      );
    }
    expect(tokens.writes).toEqual([]);
    // One refusal entry each: entry: and the actor's by-token: key; no target id (none was made).
    expect(audit.writes.filter((w) => w.startsWith("put entry:"))).toHaveLength(2);
    expect(audit.writes).toHaveLength(4);
    const entries = await lifecycle(admin.id);
    expect(entries.map((e) => [e.event, e.outcome, e.reason])).toEqual([
      ["token.create", "denied", "escalation"],
      ["token.create", "denied", "escalation"],
    ]);
    const detail = await reviewOne(entries[0].id);
    expect(detail.target).toMatchObject({ name: "escalate", scopes: ["users:write", "tokens:admin"] });
  });

  it("an admin token cannot rotate or revoke a token holding tokens:admin, its own included", async () => {
    const admin = await adminToken();
    const other = await adminToken("other admin");
    const tokens = counting(env.TOKENS);
    for (const target of [other.id, admin.id]) {
      for (const action of ["rotate", "revoke"]) {
        const res = await call(
          "POST",
          `/tokens/${target}/${action}`,
          admin.secret,
          {},
          {
            bindings: { TOKENS: tokens.kv },
          },
        );
        const problem = await expectProblem(res, 403, "forbidden");
        expect(problem.detail).toBe(
          "Tokens holding tokens:admin are made and managed only by the token CLI's direct KV path.",
        );
        expect(JSON.stringify(problem)).not.toContain(target);
      }
    }
    expect(tokens.writes).toEqual([]);
    expect(await findToken(env.TOKENS, other.secret)).not.toBeNull();
  });

  it("rotate cannot widen a token: any field but overlap_seconds is refused, nothing written", async () => {
    const admin = await adminToken();
    const target = await create(admin.secret, { name: unique("narrow"), scopes: ["users:write:first_name"] });
    const tokens = counting(env.TOKENS);
    for (const body of [
      { scopes: ["users:write", "tokens:admin"] },
      { overlap_seconds: 60, domains: ["*.com"] },
      { origins: ["https://evil.example"] },
    ]) {
      const res = await call("POST", `/tokens/${target.id}/rotate`, admin.secret, body, {
        bindings: { TOKENS: tokens.kv },
      });
      await expectProblem(res, 400, "validation-failed");
    }
    expect(tokens.writes).toEqual([]);
    const show = await jsonOf(await call("GET", `/tokens/${target.id}`, admin.secret));
    expect(show).toMatchObject({ scopes: ["users:write:first_name"] });
    expect(show).not.toHaveProperty("domains");
  });

  it("refusals say nothing about other tokens: an unknown and a malformed id get the same answer", async () => {
    const admin = await adminToken();
    for (const action of ["", "/revoke", "/rotate"]) {
      const method = action ? "POST" : "GET";
      const bodies = [];
      for (const id of ["tok_0000000000000000", "tok_nothex", "x"]) {
        const res = await call(method, `/tokens/${id}${action}`, admin.secret, action ? {} : undefined);
        const problem = await expectProblem(res, 404, "not-found");
        bodies.push({ ...problem, instance: "" });
      }
      expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
      expect(bodies[0].detail).toBe("No token has this id.");
    }
  });
});

describe("GET /tokens and GET /tokens/{id}", () => {
  it("lists page by page with a cursor and filters by revoked and expiring", async () => {
    const admin = await adminToken();
    const tag = unique("list");
    const soon = new Date(Date.now() + 2 * DAY).toISOString();
    const made: Created[] = [];
    for (let i = 0; i < 5; i++) {
      made.push(
        await create(admin.secret, {
          name: `${tag} ${i}`,
          scopes: ["audit:read"],
          ...(i < 2 ? { expires_at: soon } : {}),
        }),
      );
    }
    expect((await call("POST", `/tokens/${made[4].id}/revoke`, admin.secret, {})).status).toBe(200);
    const seen: { id: string; name: string; status: string }[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query = new URLSearchParams({ limit: "2", ...(cursor ? { cursor } : {}) });
      const res = await call("GET", `/tokens?${query}`, admin.secret);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { tokens: typeof seen; cursor: string | null };
      expect(page.tokens.length).toBeLessThanOrEqual(2);
      expect(res.headers.get("X-Next-Cursor")).toBe(page.cursor);
      seen.push(...page.tokens);
      cursor = page.cursor;
      pages++;
    } while (cursor && pages < 10_000);
    const mine = seen.filter((t) => t.name.startsWith(tag));
    expect(mine.map((t) => t.id).sort()).toEqual(made.map((t) => t.id).sort());
    expect(mine.find((t) => t.id === made[4].id)?.status).toBe("revoked");

    const all = async (query: string) => {
      const res = await call("GET", `/tokens?limit=1000&${query}`, admin.secret);
      expect(res.status).toBe(200);
      const body = (await res.json()) as { tokens: { id: string; name: string }[] };
      return body.tokens
        .filter((t) => t.name.startsWith(tag))
        .map((t) => t.id)
        .sort();
    };
    expect(await all("revoked=true")).toEqual([made[4].id]);
    expect(await all("revoked=false")).toEqual(
      made
        .slice(0, 4)
        .map((t) => t.id)
        .sort(),
    );
    const inThreeDays = new Date(Date.now() + 3 * DAY).toISOString();
    expect(await all(`expiring=${inThreeDays}`)).toEqual([made[0].id, made[1].id].sort());
    expect(await all(`expiring=${new Date(Date.now() + DAY).toISOString()}`)).toEqual([]);
  });

  it.each([
    ["revoked=yes", "revoked"],
    ["expiring=soon", "expiring"],
    ["limit=0", "limit"],
    ["status=active", "status"],
    ["revoked=true&revoked=false", "revoked"],
  ])("refuses the query %s with 400 naming %s", async (query, field) => {
    const admin = await adminToken();
    const problem = await expectProblem(
      await call("GET", `/tokens?${query}`, admin.secret),
      400,
      "invalid-request",
    );
    expect(problem.errors?.map((e) => e.field)).toContain(field);
  });

  it("shows one token without its hash; an admin token may be shown, not managed", async () => {
    const admin = await adminToken("shown admin");
    const res = await call("GET", `/tokens/${admin.id}`, admin.secret);
    expect(res.status).toBe(200);
    const body = await jsonOf(res);
    expect(body).toMatchObject({
      id: admin.id,
      name: "shown admin",
      scopes: ["tokens:admin"],
      status: "active",
    });
    expect(body).not.toHaveProperty("hash");
    expect(JSON.stringify(body)).not.toContain(await hashSecret(admin.secret));
  });

  it("read refusals: no token 401, a users:write token 403", async () => {
    await expectProblem(await call("GET", "/tokens", undefined), 401, "unauthorized");
    await expectProblem(
      await call("GET", "/tokens/tok_0000000000000000", await mint(["users:write"])),
      403,
      "forbidden",
    );
  });
});

describe("POST /tokens/{id}/revoke", () => {
  it("revokes: the secret gets 401 at once here; a second revoke says already_revoked and records nothing new", async () => {
    const admin = await adminToken();
    const calls = spyUpstream();
    const target = await create(admin.secret, { name: unique("revoke me"), scopes: ["users:write"] });
    const res = await call("POST", `/tokens/${target.id}/revoke`, admin.secret);
    expect(res.status).toBe(200);
    const body = await jsonOf(res);
    expect(body).toMatchObject({ id: target.id, status: "revoked", already_revoked: false });
    expect(body.note).toContain("about a minute");
    await expectProblem(
      await patchUser("ada@example.com", { first_name: "A" }, target.token),
      401,
      "unauthorized",
    );
    expect(calls).toHaveLength(0);
    const again = await jsonOf(await call("POST", `/tokens/${target.id}/revoke`, admin.secret));
    expect(again).toMatchObject({ already_revoked: true, revoked_at: body.revoked_at });
    const events = (await lifecycle(target.id)).map((e) => e.event);
    expect(events).toEqual(["token.revoke", "token.create"]);
  });
});

describe("POST /tokens/{id}/rotate", () => {
  /** Moves the end of the old secret's overlap into the past: the way a test lets time pass. */
  async function endOverlap(oldSecret: string): Promise<void> {
    const key = `token:${await hashSecret(oldSecret)}`;
    const record = await env.TOKENS.get<TokenRecord>(key, "json");
    if (!record) throw new Error("no old secret record");
    await env.TOKENS.put(
      key,
      JSON.stringify({ ...record, expires_at: new Date(Date.now() - 1000).toISOString() }),
    );
  }

  it("a new secret for the same id; the old keeps working until the overlap ends, then is refused", async () => {
    const admin = await adminToken();
    const calls = spyUpstream();
    const target = await create(admin.secret, { name: unique("rotate me"), scopes: ["users:write"] });
    const res = await call("POST", `/tokens/${target.id}/rotate`, admin.secret, { overlap_seconds: 600 });
    expect(res.status).toBe(200);
    const rotated = await jsonOf(res);
    expect(rotated.id).toBe(target.id);
    expect(rotated.token).toMatch(/^vge_[0-9a-f]{72}$/);
    expect(rotated.token).not.toBe(target.token);
    const overlapEnd = Date.parse(rotated.record.previous_expires_at);
    expect(overlapEnd).toBeGreaterThan(Date.now() + 590_000);
    expect(overlapEnd).toBeLessThanOrEqual(Date.now() + 600_000);
    expect(rotated.record).not.toHaveProperty("previous_hash");
    // The old secret's record expires in KV too, a minute after the overlap.
    const [listed] = (await env.TOKENS.list({ prefix: `token:${await hashSecret(target.token)}` })).keys;
    expect(listed.expiration).toBe(Math.floor(overlapEnd / 1000) + 60);
    // Both secrets map to the same public id, and both work during the overlap.
    expect((await findToken(env.TOKENS, target.token))?.id).toBe(target.id);
    expect((await findToken(env.TOKENS, rotated.token))?.id).toBe(target.id);
    expect((await patchUser("ada@example.com", { first_name: "Old" }, target.token)).status).toBe(202);
    expect((await patchUser("ada@example.com", { first_name: "New" }, rotated.token)).status).toBe(202);
    await endOverlap(target.token);
    await expectProblem(
      await patchUser("ada@example.com", { first_name: "Old" }, target.token),
      401,
      "unauthorized",
    );
    expect((await patchUser("ada@example.com", { first_name: "New" }, rotated.token)).status).toBe(202);
    expect(calls).toHaveLength(3);
  });

  it("overlap 0 refuses the old secret at once; the default overlap is one hour; over the maximum is 400", async () => {
    const admin = await adminToken();
    spyUpstream();
    const target = await create(admin.secret, { name: unique("rotate now"), scopes: ["users:write"] });
    const now = await jsonOf(
      await call("POST", `/tokens/${target.id}/rotate`, admin.secret, { overlap_seconds: 0 }),
    );
    await expectProblem(
      await patchUser("ada@example.com", { first_name: "A" }, target.token),
      401,
      "unauthorized",
    );
    expect(now.record).not.toHaveProperty("previous_expires_at");
    const byDefault = await jsonOf(await call("POST", `/tokens/${target.id}/rotate`, admin.secret));
    const end = Date.parse(byDefault.record.previous_expires_at);
    expect(end).toBeGreaterThan(Date.now() + 3_590_000);
    expect(end).toBeLessThanOrEqual(Date.now() + 3_600_000);
    expect((await patchUser("ada@example.com", { first_name: "A" }, now.token)).status).toBe(202);
    for (const overlap of [MAX_OVERLAP_S + 1, -1, 1.5, "60"]) {
      const res = await call("POST", `/tokens/${target.id}/rotate`, admin.secret, {
        overlap_seconds: overlap,
      });
      const problem = await expectProblem(res, 400, "validation-failed");
      expect(problem.errors?.[0].field).toBe("overlap_seconds");
    }
  });

  it("the overlap never outlives the token; a second rotation ends the first overlap at once", async () => {
    const admin = await adminToken();
    spyUpstream();
    const expires = new Date(Date.now() + 10 * 60_000).toISOString();
    const target = await create(admin.secret, {
      name: unique("short"),
      scopes: ["users:write"],
      expires_at: expires,
    });
    const first = await jsonOf(
      await call("POST", `/tokens/${target.id}/rotate`, admin.secret, { overlap_seconds: MAX_OVERLAP_S }),
    );
    expect(first.record.previous_expires_at).toBe(new Date(Date.parse(expires)).toISOString());
    expect(first.record.expires_at).toBe(target.record.expires_at);
    const second = await jsonOf(
      await call("POST", `/tokens/${target.id}/rotate`, admin.secret, { overlap_seconds: 60 }),
    );
    await expectProblem(
      await patchUser("ada@example.com", { first_name: "A" }, target.token),
      401,
      "unauthorized",
    );
    expect((await patchUser("ada@example.com", { first_name: "A" }, first.token)).status).toBe(202);
    expect((await patchUser("ada@example.com", { first_name: "A" }, second.token)).status).toBe(202);
  });

  it("revoking a rotated token refuses both secrets; a revoked token cannot be rotated", async () => {
    const admin = await adminToken();
    spyUpstream();
    const target = await create(admin.secret, { name: unique("rotate revoke"), scopes: ["users:write"] });
    const rotated = await jsonOf(
      await call("POST", `/tokens/${target.id}/rotate`, admin.secret, { overlap_seconds: 600 }),
    );
    expect((await call("POST", `/tokens/${target.id}/revoke`, admin.secret)).status).toBe(200);
    for (const secret of [target.token, rotated.token]) {
      await expectProblem(
        await patchUser("ada@example.com", { first_name: "A" }, secret),
        401,
        "unauthorized",
      );
    }
    const tokens = counting(env.TOKENS);
    const res = await call(
      "POST",
      `/tokens/${target.id}/rotate`,
      admin.secret,
      {},
      { bindings: { TOKENS: tokens.kv } },
    );
    const problem = await expectProblem(res, 404, "not-found");
    expect(problem.detail).toBe("This token is revoked or expired: create a new one instead.");
    expect(tokens.writes).toEqual([]);
  });
});

describe("the caller limiter comes before any audited refusal", () => {
  it("an admin token over its limit gets 429 before its scope or body is looked at, and floods write no audit entry", async () => {
    const admin = await adminToken();
    const audit = counting(env.AUDIT);
    const strict = { TOKEN_RATE_LIMITER: env.STRICT_TOKEN_RATE_LIMITER, AUDIT: audit.kv };
    let refused: Response | undefined;
    let sent = 0;
    for (; sent < 1000 && !refused; sent++) {
      const res = await call(
        "POST",
        "/tokens",
        admin.secret,
        { name: "flood", scopes: ["tokens:admin"] },
        { bindings: strict },
      );
      if (res.status === 429) refused = res;
      else expect(res.status).toBe(403);
    }
    if (!refused) throw new Error("never rate limited");
    expect(refused.headers.get("Retry-After")).toBe("60");
    const entries = audit.writes.filter((w) => w.startsWith("put entry:")).length;
    expect(entries).toBe(sent - 1);
    // Over the limit, a request that would be an Origin refusal gets 429 (the limiter comes
    // first) and is not recorded.
    const before = audit.writes.length;
    const res = await call("GET", "/tokens", admin.secret, undefined, {
      headers: { Origin: "https://app.example.com" },
      bindings: strict,
    });
    await expectProblem(res, 429, "rate-limited");
    expect(audit.writes.length).toBe(before);
  });
});

describe("lifecycle in the audit trail", () => {
  it("create, rotate and revoke each name the acting token, the target's public fields and expiry, never a secret or hash; GET /audit?token= shows them with the token's use", async () => {
    const admin = await adminToken("onboarding system");
    spyUpstream();
    const expires = new Date(Date.now() + 30 * DAY).toISOString();
    const target = await create(admin.secret, {
      name: unique("Acme CRM"),
      scopes: ["users:write:phone_number"],
      domains: ["acme.example"],
      origins: ["https://crm.acme.example"],
      expires_at: expires,
    });
    const res = await patchUser("ada@acme.example", { phone_number: "+12025550143" }, target.token, {
      headers: { Origin: "https://crm.acme.example" },
    });
    expect([202, 404]).toContain(res.status);
    const rotated = await jsonOf(
      await call("POST", `/tokens/${target.id}/rotate`, admin.secret, { overlap_seconds: 120 }),
    );
    expect((await call("POST", `/tokens/${target.id}/revoke`, admin.secret)).status).toBe(200);

    const page = await review({ token: target.id });
    const kinds = page.entries.map((e) => e.event ?? "use");
    expect(kinds).toEqual(["token.revoke", "token.rotate", "use", "token.create"]);
    const expected = {
      id: target.id,
      name: target.record.name,
      scopes: ["users:write:phone_number"],
      domains: ["acme.example"],
      origins: ["https://crm.acme.example"],
      expires_at: target.record.expires_at,
    };
    for (const summary of page.entries.filter((e) => e.event)) {
      expect(summary).toMatchObject({
        token_id: admin.id,
        token_name: "onboarding system",
        target_id: target.id,
        outcome: "accepted",
        fields: [],
      });
      const detail: AuditDetail = await reviewOne(summary.id);
      expect(detail).toMatchObject({
        kind: "token",
        event: summary.event,
        token_id: admin.id,
        target: expected,
      });
      const text = JSON.stringify(detail);
      for (const secret of [target.token, rotated.token, admin.secret]) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(await hashSecret(secret));
      }
    }
    const rotation = await reviewOne(page.entries[1].id);
    expect(rotation.target?.previous_expires_at).toBe(rotated.record.previous_expires_at);
    // The same entries are listed under the acting admin token.
    const byActor = (await review({ token: admin.id })).entries.map((e) => e.event);
    expect(byActor).toEqual(["token.revoke", "token.rotate", "token.create"]);
  });

  it("a refused change of a token is recorded with the token it named", async () => {
    const admin = await adminToken();
    const other = await adminToken("guarded admin");
    expect((await call("POST", `/tokens/${other.id}/revoke`, admin.secret)).status).toBe(403);
    const [entry] = await lifecycle(other.id);
    expect(entry).toMatchObject({
      event: "token.revoke",
      outcome: "denied",
      reason: "escalation",
      token_id: admin.id,
      target_id: other.id,
    });
  });
});

describe("lifecycle entries are signed like every audit record", () => {
  it("create, rotate, revoke and refused attempts verify clean (npm run audit -- verify's core)", async () => {
    const { kvSource, verifyTrail } = await import("../scripts/lib/verify-trail.ts");
    const { parseKeyRing } = await import("../src/model/mac.ts");
    const since = Date.now() - 1000;
    const admin = await adminToken("signing check");
    spyUpstream();
    const made = await create(admin.secret, { name: "signed", scopes: ["users:write:first_name"] });
    expect(
      (await call("POST", `/tokens/${made.id}/rotate`, admin.secret, { overlap_seconds: 60 })).status,
    ).toBe(200);
    expect((await call("POST", `/tokens/${made.id}/revoke`, admin.secret)).status).toBe(200);
    const escalation = await call("POST", "/tokens", admin.secret, { name: "x", scopes: ["tokens:admin"] });
    expect(escalation.status).toBe(403);
    const fromBrowser = await call("GET", "/tokens", admin.secret, undefined, {
      headers: { Origin: "https://app.example.com" },
    });
    expect(fromBrowser.status).toBe(403);
    const refused = await call("POST", `/tokens/${admin.id}/revoke`, admin.secret);
    expect(refused.status).toBe(403);
    const report = await verifyTrail(kvSource(env.AUDIT), parseKeyRing(env.AUDIT_SIGNING_KEY), {
      since,
      until: Date.now() + 1000,
    });
    expect(report.problems).toEqual([]);
    expect(report.entries).toBeGreaterThanOrEqual(5);
  });
});
