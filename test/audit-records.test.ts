import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { kvSource, type TrailSource, verifyTrail } from "../scripts/lib/verify-trail.ts";
import { digestKeys, GENESIS, HOUR_MS, hourOf, newProgress, runDigests } from "../src/audit/digest.ts";
import { type AuditEntry, auditKeys, newAuditId, writeEntry, writeOutcome } from "../src/audit/store.ts";
import { parseKeyRing } from "../src/model/mac.ts";
import { AuditRecordsPageSchema } from "../tools/openapi/audit.ts";
import { reviewerToken, WRITE_CONFIG } from "./audit-helpers.ts";
import { expectProblem, mint, send } from "./helpers.ts";

/**
 * `GET /audit/records`: the raw signed records `npm run audit -- verify --url` reads. verify's
 * core over this endpoint must report exactly what it reports over KV itself.
 */
const HOUR = hourOf(Date.parse("2026-11-15T14:00:00Z"));
let ids: string[] = [];

beforeAll(async () => {
  for (let i = 0; i < 5; i++) {
    const time = HOUR + i * 600_000;
    const entry: AuditEntry = {
      v: 1,
      id: newAuditId(time),
      request_id: `rec-${i}`,
      time: new Date(time).toISOString(),
      token_id: "tok_00000000000000e1",
      token_name: "records",
      email: "rec@example.com",
      fields: ["last_name"],
      values_mode: "none",
    };
    await writeEntry(env.AUDIT, entry, WRITE_CONFIG);
    await writeOutcome(
      env.AUDIT,
      { v: 1, id: entry.id, time: entry.time, outcome: "accepted", upstream_status: 201, latency_ms: 3 },
      WRITE_CONFIG,
    );
    ids.push(entry.id);
  }
  await env.AUDIT.put(digestKeys.progress, JSON.stringify(newProgress(HOUR, GENESIS)));
  await runDigests(env.AUDIT, WRITE_CONFIG, HOUR + 2 * HOUR_MS);
  ids = ids.sort();
});

async function records(query: string, headers?: HeadersInit) {
  return send(`/audit/records?${query}`, {
    headers: headers ?? { Authorization: `Bearer ${await reviewerToken()}` },
  });
}

/** A TrailSource over the endpoint, as scripts/lib/audit-verify.ts builds one (without its cache). */
const httpSource = (token: string): TrailSource => ({
  async list(prefix, cursor) {
    const q = new URLSearchParams({ prefix });
    if (cursor) q.set("cursor", cursor);
    const res = await send(`/audit/records?${q}`, { headers: { Authorization: `Bearer ${token}` } });
    const page = AuditRecordsPageSchema.parse(await res.json());
    return { keys: page.records.map((r) => ({ name: r.key, metadata: r.metadata })), cursor: page.cursor };
  },
  async read(names) {
    const q = new URLSearchParams();
    for (const n of names) q.append("key", n);
    const res = await send(`/audit/records?${q}`, { headers: { Authorization: `Bearer ${token}` } });
    const page = AuditRecordsPageSchema.parse(await res.json());
    return new Map(page.records.map((r) => [r.key, { value: r.value, metadata: r.metadata }]));
  },
});

describe("GET /audit/records", () => {
  it("lists records under a prefix with their values and MACs, exactly as stored", async () => {
    const res = await records("prefix=entry:");
    expect(res.status).toBe(200);
    expect(res.headers.get("Cache-Control")).toContain("no-store");
    const page = AuditRecordsPageSchema.parse(await res.json());
    expect(page.records.map((r) => r.key)).toEqual(ids.map(auditKeys.entry));
    const first = page.records[0];
    expect(first.value).toBe(await env.AUDIT.get(first.key));
    expect(first.metadata?.mac).toMatch(/^test:[A-Za-z0-9_-]{43}$/);
    expect(page.cursor).toBeNull();
  });

  it("reads named keys, null for one that does not exist", async () => {
    const res = await records(`key=${digestKeys.digest(HOUR)}&key=entry:nothing`);
    const page = AuditRecordsPageSchema.parse(await res.json());
    expect(page.records[0].value).toBe(await env.AUDIT.get(digestKeys.digest(HOUR)));
    expect(page.records[1]).toEqual({ key: "entry:nothing", value: null, metadata: null });
  });

  it("gives verify's core exactly the report it gets from KV", async () => {
    const ring = parseKeyRing(env.AUDIT_SIGNING_KEY);
    const range = { since: HOUR, until: HOUR + HOUR_MS - 1 };
    const viaHttp = await verifyTrail(httpSource(await reviewerToken()), ring, range);
    expect(viaHttp).toEqual(await verifyTrail(kvSource(env.AUDIT), ring, range));
    expect(viaHttp).toMatchObject({ entries: 5, outcomes: 5, digests: 1, problems: [] });
  });

  it.each([
    ["neither prefix nor key", ""],
    ["both prefix and key", "prefix=entry:&key=entry:x"],
    ["a cursor without a prefix", "key=entry:x&cursor=abc"],
    ["an unknown parameter", "prefix=entry:&limit=5"],
    ["a repeated prefix", "prefix=entry:&prefix=outcome:"],
    ["101 keys", Array.from({ length: 101 }, (_, i) => `key=k${i}`).join("&")],
  ])("answers 400 for %s", async (_name, query) => {
    await expectProblem(await records(query), 400, "invalid-request");
  });

  it("needs a token with audit:read", async () => {
    await expectProblem(await records("prefix=entry:", {}), 401, "unauthorized");
    const writer = await mint(["users:write"]);
    await expectProblem(
      await records("prefix=entry:", { Authorization: `Bearer ${writer}` }),
      403,
      "forbidden",
    );
  });
});
