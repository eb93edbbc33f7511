import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it, vi } from "vitest";
import { NDJSON } from "../src/audit/query-schema.ts";
import {
  type AuditEntry,
  type AuditOutcome,
  type AuditOutcomeRecord,
  newAuditId,
  writeEntry,
  writeOutcome,
} from "../src/audit/store.ts";
import { failingReads, review, reviewAll, reviewerToken, WRITE_CONFIG } from "./audit-helpers.ts";
import { expectProblem, mint, send } from "./helpers.ts";

/**
 * A fixture of 60 entries written straight through the storage module: three emails, two
 * tokens, five kinds, four request ids. This file writes nothing else to AUDIT, so every
 * query's exact answer can be computed from the fixture.
 */
const EMAILS = ["ada@example.com", "Grace.H@example.org", "alan@example.net"];
const TOKENS = ["tok_00000000000000a1", "tok_00000000000000b2"];
const KINDS = ["accepted", "not_found", "denied", "invalid", "open"] as const;

interface Fixture {
  id: string;
  time: number;
  email: string;
  token: string;
  requestId: string;
  outcome: AuditOutcome;
}
const fixture: Fixture[] = [];

beforeAll(async () => {
  const now = Date.now();
  for (let i = 0; i < 60; i++) {
    // three newest entries are seconds old (open ones: pending); the rest over ten minutes old
    const time = i < 3 ? now - i * 10_000 : now - 10 * 60_000 - i * 60_000;
    const kind = KINDS[i % KINDS.length];
    const entry: AuditEntry = {
      v: 1,
      id: newAuditId(time),
      request_id: `rid-${i % 4}`,
      time: new Date(time).toISOString(),
      token_id: TOKENS[i % 2],
      token_name: `token ${i % 2}`,
      email: EMAILS[i % 3],
      fields: ["first_name"],
      values_mode: "none",
      ...(kind === "denied" || kind === "invalid" ? { outcome: kind, reason: "scope" } : {}),
    };
    await writeEntry(env.AUDIT, entry, WRITE_CONFIG);
    if (kind === "accepted" || kind === "not_found") {
      const record: AuditOutcomeRecord = {
        v: 1,
        id: entry.id,
        time: new Date(time + 50).toISOString(),
        outcome: kind,
        upstream_status: kind === "accepted" ? 201 : 404,
        latency_ms: 50,
      };
      await writeOutcome(env.AUDIT, record, WRITE_CONFIG);
    }
    const outcome: AuditOutcome = kind === "open" ? (i < 3 ? "pending" : "unknown") : kind;
    fixture.push({
      id: entry.id,
      time,
      email: EMAILS[i % 3],
      token: TOKENS[i % 2],
      requestId: entry.request_id,
      outcome,
    });
  }
});

/** Expected ids, newest first, of the fixture entries matching a query. */
function expected(q: Record<string, string>): string[] {
  return fixture
    .filter(
      (f) =>
        (!q.email || f.email.toLowerCase() === q.email.toLowerCase()) &&
        (!q.token || f.token === q.token) &&
        (!q.outcome || f.outcome === q.outcome) &&
        (!q.request_id || f.requestId === q.request_id) &&
        (!q.since || f.time >= Date.parse(q.since)) &&
        (!q.until || f.time <= Date.parse(q.until)),
    )
    .sort((a, b) => b.time - a.time)
    .map((f) => f.id);
}

const iso = (i: number) => new Date(fixture[i].time).toISOString();

describe("GET /audit filters", () => {
  const queries: Record<string, string>[] = [
    {},
    { email: EMAILS[0] },
    { email: EMAILS[1] },
    { email: "GRACE.H@EXAMPLE.ORG" },
    { token: TOKENS[0] },
    { token: TOKENS[1] },
    { outcome: "accepted" },
    { outcome: "not_found" },
    { outcome: "denied" },
    { outcome: "invalid" },
    { outcome: "pending" },
    { outcome: "unknown" },
    { outcome: "timeout" },
    { request_id: "rid-1" },
    { email: EMAILS[2], token: TOKENS[1] },
    { email: EMAILS[0], outcome: "unknown" },
    { token: TOKENS[0], outcome: "accepted", request_id: "rid-2" },
    { email: "nobody@example.com" },
  ];
  for (const q of queries) {
    it(`returns exactly the matching entries for ${JSON.stringify(q)}`, async () => {
      expect(fixture).toHaveLength(60);
      const ids = (await reviewAll(q)).map((e) => e.id);
      expect(ids).toEqual(expected(q));
      const small = (await reviewAll({ ...q, limit: "4" })).map((e) => e.id);
      expect(small).toEqual(expected(q));
    });
  }

  it("filters by time (since and until inclusive), alone and with other filters", async () => {
    const windows: Record<string, string>[] = [
      { since: iso(20) },
      { until: iso(20) },
      { since: iso(40), until: iso(10) },
      { since: iso(11), until: iso(11) },
      { since: iso(59), until: iso(0), email: EMAILS[1] },
      { since: iso(30), until: iso(5), token: TOKENS[0], outcome: "invalid" },
      { since: new Date(Date.now() - 60_000).toISOString() },
      { until: "2001-01-01" },
    ];
    for (const q of windows) {
      const ids = (await reviewAll({ ...q, limit: "3" })).map((e) => e.id);
      expect(ids, JSON.stringify(q)).toEqual(expected(q));
      expect(ids.length, JSON.stringify(q)).toBeLessThan(61);
    }
    expect((await reviewAll({ since: iso(40), until: iso(10) })).length).toBe(31);
  });

  it("lists newest first with the summary, outcome and upstream status from one page", async () => {
    const { entries, cursor } = await review({ limit: "60" });
    expect(cursor).toBeNull();
    expect(entries.map((e) => e.id)).toEqual(expected({}));
    const accepted = entries.find((e) => e.outcome === "accepted");
    expect(accepted).toMatchObject({ upstream_status: 201, latency_ms: 50, fields: ["first_name"] });
    expect(Object.keys(accepted ?? {}).sort()).toEqual(
      [
        "email",
        "fields",
        "id",
        "latency_ms",
        "outcome",
        "request_id",
        "time",
        "token_id",
        "token_name",
        "upstream_status",
      ].sort(),
    );
  });

  it("pages with the KV cursor and never returns more than limit", async () => {
    const first = await review({ limit: "7" });
    expect(first.entries).toHaveLength(7);
    expect(first.cursor).toEqual(expect.any(String));
    const second = await review({ limit: "7", cursor: first.cursor ?? "" });
    expect(second.entries.map((e) => e.id)).toEqual(expected({}).slice(7, 14));
  });
});

describe("NDJSON export", () => {
  it("streams the same query as lines, with the next cursor in X-Next-Cursor", async () => {
    const token = await reviewerToken();
    const get = (query: string) =>
      send(`/audit?${query}`, { headers: { Authorization: `Bearer ${token}`, Accept: NDJSON } });
    const all = await get(`token=${TOKENS[1]}`);
    expect(all.status).toBe(200);
    expect(all.headers.get("Content-Type")).toBe(NDJSON);
    expect(all.headers.get("X-Next-Cursor")).toBeNull();
    const text = await all.text();
    expect(text.endsWith("\n")).toBe(true);
    const lines = text
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.id)).toEqual(expected({ token: TOKENS[1] }));

    const seen: string[] = [];
    let query = "limit=25";
    for (let i = 0; i < 10; i++) {
      const res = await get(query);
      const body = await res.text();
      seen.push(
        ...body
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l).id),
      );
      const next = res.headers.get("X-Next-Cursor");
      if (!next) break;
      query = `limit=25&cursor=${encodeURIComponent(next)}`;
    }
    expect(seen).toEqual(expected({}));
  });
});

describe("GET /audit authorization", () => {
  it("needs a token", async () => {
    const res = await send("/audit");
    await expectProblem(res, 401, "unauthorized");
    expect(res.headers.get("WWW-Authenticate")).toBe('Bearer realm="village-edge"');
  });

  it("needs the audit:read scope", async () => {
    const token = await mint(["users:write"]);
    for (const path of ["/audit", `/audit/${fixture[0].id}`]) {
      const res = await send(path, { headers: { Authorization: `Bearer ${token}` } });
      await expectProblem(res, 403, "forbidden");
      expect(res.headers.get("WWW-Authenticate")).toContain('scope="audit:read"');
    }
  });

  it("refuses other methods with 405", async () => {
    const res = await send("/audit", {
      method: "POST",
      headers: { Authorization: `Bearer ${await reviewerToken()}` },
    });
    await expectProblem(res, 405, "method-not-allowed");
    expect(res.headers.get("Allow")).toContain("GET");
  });
});

describe("GET /audit query validation", () => {
  const bad: [string, string][] = [
    ["email=not-an-email", "email"],
    ["email=a%40b", "email"],
    ["token=tok_xyz", "token"],
    ["outcome=approved", "outcome"],
    ["request_id=has%20space", "request_id"],
    ["since=yesterday", "since"],
    ["until=2026-13-01", "until"],
    ["since=2026-02-02&until=2026-02-01", "since"],
    ["limit=0", "limit"],
    ["limit=1001", "limit"],
    ["limit=abc", "limit"],
    ["limit=5&limit=6", "limit"],
    ["emial=ada@example.com", ""],
  ];
  for (const [query, field] of bad) {
    it(`answers 400 for ${query}`, async () => {
      const res = await send(`/audit?${query}`, {
        headers: { Authorization: `Bearer ${await reviewerToken()}` },
      });
      const problem = await expectProblem(res, 400, "invalid-request");
      expect(problem.errors?.map((e) => e.field)).toContain(field);
    });
  }
});

describe("GET /audit/:id", () => {
  it("shows one entry with its outcome", async () => {
    const f = fixture.find((x) => x.outcome === "accepted");
    const res = await send(`/audit/${f?.id}`, {
      headers: { Authorization: `Bearer ${await reviewerToken()}` },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      id: f?.id,
      outcome: "accepted",
      upstream_status: 201,
      latency_ms: 50,
    });
  });

  it("answers 404 for an unknown or malformed id, pointing to the request_id filter", async () => {
    for (const id of [newAuditId(), "rid-1", "00000000-0000-0000-0000-000000000000"]) {
      const res = await send(`/audit/${id}`, {
        headers: { Authorization: `Bearer ${await reviewerToken()}` },
      });
      const problem = await expectProblem(res, 404, "not-found");
      expect(problem.detail).toContain("request_id");
    }
  });
});

describe("when KV cannot be read", () => {
  it("answers 503 for both routes, the detail only in the logs", async () => {
    const errors = vi.spyOn(console, "error").mockImplementation(() => {});
    const headers = { Authorization: `Bearer ${await reviewerToken()}` };
    for (const path of ["/audit", `/audit?email=${EMAILS[0]}`, `/audit/${fixture[0].id}`]) {
      const res = await send(path, { headers, bindings: { AUDIT: failingReads() } });
      const problem = await expectProblem(res, 503, "service-unavailable");
      expect(problem.detail).toBe("The audit trail is unavailable; try again later.");
      expect(res.headers.get("Retry-After")).toBe("5");
    }
    expect(errors.mock.calls.map((a) => String(a[0])).join("\n")).toContain("503 injected");
    vi.restoreAllMocks();
  });
});
