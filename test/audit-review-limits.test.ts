/**
 * Rights and limits of reviewers (issue 11, items 3 and 10): a domain-limited `audit:read`
 * token sees only entries whose target is in its domains, in pages, exports and single
 * reads; reviews are rate-limited per caller. Reviews never write to KV.
 */
import { env } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type AuditEntry, type AuditSummary, newAuditId, writeEntry } from "../src/audit/store.ts";
import { countingAudit, mintWithId, WRITE_CONFIG } from "./audit-helpers.ts";
import { captureLogs, expectProblem, send } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

const TOKEN = `tok_${crypto.randomUUID().replace(/-/g, "").slice(0, 16)}`;
const ids = { org: [] as string[], com: [] as string[], sub: [] as string[], none: [] as string[] };

beforeAll(async () => {
  const base = Date.now() - 10 * 60_000;
  let n = 0;
  const put = async (email: string | undefined, bucket: string[]) => {
    const time = base - n++ * 1000;
    const entry: AuditEntry = {
      v: 1,
      id: newAuditId(time),
      request_id: `rid-${n}`,
      time: new Date(time).toISOString(),
      token_id: TOKEN,
      token_name: "seeded",
      email,
      fields: ["first_name"],
      values_mode: "none",
      outcome: email ? "denied" : "invalid",
      reason: email ? "scope" : "invalid_email",
    };
    await writeEntry(env.AUDIT, entry, WRITE_CONFIG);
    bucket.push(entry.id);
  };
  // newest first: a run of other-domain entries before the reviewer's own, so pages must be filled
  for (let i = 0; i < 30; i++) await put(`u${i}@other.org`, ids.org);
  for (let i = 0; i < 5; i++) await put(`Ada${i}@example.com`, ids.com);
  for (let i = 0; i < 3; i++) await put(`bob${i}@eu.example.com`, ids.sub);
  for (let i = 0; i < 2; i++) await put(undefined, ids.none);
});

const bearer = (secret: string) => ({ Authorization: `Bearer ${secret}` });

/** Follows cursors (bounded) and returns every entry and the number of pages. */
async function listAll(secret: string, query: Record<string, string>, bindings: Partial<Env> = {}) {
  const entries: AuditSummary[] = [];
  let cursor: string | null = null;
  for (let pages = 1; pages <= 100; pages++) {
    const q = new URLSearchParams(cursor ? { ...query, cursor } : query);
    const res = await send(`/audit?${q}`, { headers: bearer(secret), bindings });
    expect(res.status).toBe(200);
    const page = (await res.json()) as { entries: AuditSummary[]; cursor: string | null };
    expect(page.entries.length).toBeLessThanOrEqual(Number(query.limit ?? 50));
    entries.push(...page.entries);
    cursor = page.cursor;
    if (cursor === null) return { entries, pages };
  }
  throw new Error("not exhausted");
}

describe("a domain-limited reviewer (issue 11, item 3)", () => {
  it("lists only entries whose target is in its domains, pages filled without dropping any", async () => {
    const audit = countingAudit();
    const { secret } = await mintWithId(["audit:read"], "com reviewer", { domains: ["example.com"] });
    const { entries } = await listAll(secret, { token: TOKEN, limit: "3" }, { AUDIT: audit.kv });
    expect(entries.map((e) => e.id)).toEqual(ids.com);
    expect(audit.writes).toHaveLength(0);
    const wildcard = await mintWithId(["audit:read"], "sub reviewer", { domains: ["*.example.com"] });
    expect((await listAll(wildcard.secret, { token: TOKEN })).entries.map((e) => e.id)).toEqual(ids.sub);
    const any = await mintWithId(["audit:read"], "any reviewer");
    const all = await listAll(any.secret, { token: TOKEN, limit: "1000" });
    expect(all.entries).toHaveLength(40); // unrestricted: everything, entries without a target too
  });

  it("exports only its domains as NDJSON", async () => {
    const { secret } = await mintWithId(["audit:read"], "com exporter", {
      domains: ["example.com", "*.example.com"],
    });
    const res = await send(`/audit?token=${TOKEN}`, {
      headers: { ...bearer(secret), Accept: "application/x-ndjson" },
    });
    expect(res.status).toBe(200);
    const lines = (await res.text())
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as AuditSummary);
    expect(lines.map((e) => e.id)).toEqual([...ids.com, ...ids.sub]);
  });

  it("gets an empty answer without a KV call for an email outside its domains", async () => {
    const audit = countingAudit();
    const { secret } = await mintWithId(["audit:read"], "com reviewer", { domains: ["example.com"] });
    const res = await send("/audit?email=u1@other.org", {
      headers: bearer(secret),
      bindings: { AUDIT: audit.kv },
    });
    expect(await res.json()).toEqual({ entries: [], cursor: null });
    expect(audit.reads).toHaveLength(0);
    expect(audit.writes).toHaveLength(0);
    const own = await send("/audit?email=ada0@example.com", { headers: bearer(secret) });
    expect(((await own.json()) as { entries: AuditSummary[] }).entries.map((e) => e.id)).toEqual([
      ids.com[0],
    ]);
  });

  it("gets 404 for an entry of another domain or without a target, 200 for its own", async () => {
    const { secret } = await mintWithId(["audit:read"], "com reviewer", { domains: ["example.com"] });
    for (const id of [ids.org[0], ids.sub[0], ids.none[0]]) {
      await expectProblem(await send(`/audit/${id}`, { headers: bearer(secret) }), 404, "not-found");
    }
    const own = await send(`/audit/${ids.com[0]}`, { headers: bearer(secret) });
    expect(own.status).toBe(200);
    expect(((await own.json()) as AuditEntry).email).toBe("Ada0@example.com");
  });
});

describe("the review rate limit (issue 11, item 10)", () => {
  it("refuses the 61st review of a minute with 429 and Retry-After, before any KV read", async () => {
    captureLogs("warn");
    const audit = countingAudit();
    const { secret } = await mintWithId(["audit:read"], "busy reviewer");
    const bindings = { REVIEW_RATE_LIMITER: env.STRICT_REVIEW_RATE_LIMITER, AUDIT: audit.kv };
    const window = Math.floor(Date.now() / 60_000);
    let refused: Response | undefined;
    let allowed = 0;
    for (let i = 0; i < 120 && !refused; i++) {
      // list and single reads share one budget
      const path = i % 2 ? `/audit/${ids.com[0]}` : `/audit?token=${TOKEN}&limit=1`;
      const res = await send(path, { headers: bearer(secret), bindings });
      if (res.status === 429) refused = res;
      else {
        expect(res.status).toBe(200);
        allowed++;
      }
    }
    expect(refused, "the review limit never triggered").toBeDefined();
    if (!refused) return;
    await expectProblem(refused, 429, "rate-limited");
    expect(refused.headers.get("Retry-After")).toBe("60");
    if (Math.floor(Date.now() / 60_000) === window) expect(allowed).toBe(60);
    const reads = audit.reads.length;
    const again = await send(`/audit?token=${TOKEN}`, { headers: bearer(secret), bindings });
    if (again.status === 429) expect(audit.reads.length).toBe(reads); // refused before any KV read
    expect(audit.writes).toHaveLength(0);
  });
});

describe("review challenges (issue 11, item 9)", () => {
  it("answers another scheme with a plain 401 challenge, no error code, no KV read", async () => {
    const audit = countingAudit();
    for (const header of ["Basic YWRhOmFkYQ==", "Digest username=x"]) {
      const res = await send("/audit", { headers: { Authorization: header }, bindings: { AUDIT: audit.kv } });
      const body = await expectProblem(res, 401, "unauthorized");
      expect(body.detail).toBe("A bearer token is required.");
      expect(res.headers.get("WWW-Authenticate")).toBe('Bearer realm="village-edge"');
    }
    expect(audit.reads).toHaveLength(0);
    expect(audit.writes).toHaveLength(0);
  });
});
