import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { NDJSON } from "../src/audit/query-schema.ts";
import { type AuditEntry, newAuditId, writeEntry, writeOutcome } from "../src/audit/store.ts";
import { reviewAll, reviewerToken, WRITE_CONFIG } from "./audit-helpers.ts";
import { send } from "./helpers.ts";

/**
 * 1100 entries written straight through the storage module (fast): every other one a
 * forwarded change with an outcome, the rest refusals; two emails, one token. This file
 * writes nothing else to AUDIT.
 */
const COUNT = 1100;
const TOKEN = "tok_0000000000000c01";
const EMAILS = ["pager-a@example.com", "pager-b@example.com"];
const ids: string[] = [];
const times = new Map<string, number>();

beforeAll(async () => {
  const base = Date.now() - 60 * 60_000;
  const work: Promise<void>[] = [];
  for (let i = 0; i < COUNT; i++) {
    const time = base - i * 1000;
    const entry: AuditEntry = {
      v: 1,
      id: newAuditId(time),
      request_id: `page-${i}`,
      time: new Date(time).toISOString(),
      token_id: TOKEN,
      token_name: "pager",
      email: EMAILS[i % 2],
      fields: ["last_name"],
      values_mode: "none",
      ...(i % 2 === 1 ? { outcome: "denied" as const, reason: "scope" } : {}),
    };
    ids.push(entry.id);
    times.set(entry.id, time);
    work.push(
      writeEntry(env.AUDIT, entry, WRITE_CONFIG).then(() =>
        i % 2 === 0
          ? writeOutcome(
              env.AUDIT,
              {
                v: 1,
                id: entry.id,
                time: entry.time,
                outcome: "accepted",
                upstream_status: 201,
                latency_ms: 9,
              },
              WRITE_CONFIG,
            )
          : undefined,
      ),
    );
    if (work.length >= 100) await Promise.all(work.splice(0));
  }
  await Promise.all(work);
}, 120_000);

/** Asserts every id appears exactly once, newest first. */
function expectEachOnce(seen: string[], wanted: string[]) {
  expect(seen.length).toBe(wanted.length);
  expect(new Set(seen).size).toBe(seen.length);
  expect(seen).toEqual(wanted);
}

describe(`paging over ${COUNT} entries`, () => {
  for (const limit of ["1000", "333", "64"]) {
    it(`returns each entry exactly once, newest first, with limit=${limit}`, async () => {
      const seen = await reviewAll({ limit });
      expectEachOnce(
        seen.map((e) => e.id),
        ids,
      );
      expect(seen.filter((e) => e.outcome === "accepted")).toHaveLength(COUNT / 2);
      expect(seen.filter((e) => e.outcome === "denied")).toHaveLength(COUNT / 2);
    });
  }

  it("returns each entry exactly once through the token index", async () => {
    expectEachOnce(
      (await reviewAll({ token: TOKEN, limit: "1000" })).map((e) => e.id),
      ids,
    );
  });

  it("returns each entry exactly once through the email index, and with an outcome filter", async () => {
    expectEachOnce(
      (await reviewAll({ email: EMAILS[0], limit: "1000" })).map((e) => e.id),
      ids.filter((_, i) => i % 2 === 0),
    );
    expectEachOnce(
      (await reviewAll({ outcome: "denied", limit: "250" })).map((e) => e.id),
      ids.filter((_, i) => i % 2 === 1),
    );
  });

  it("returns each entry of a time window exactly once (narrowed prefix)", async () => {
    const since = new Date(times.get(ids[900]) ?? 0).toISOString();
    const until = new Date(times.get(ids[100]) ?? 0).toISOString();
    expectEachOnce(
      (await reviewAll({ since, until, limit: "97" })).map((e) => e.id),
      ids.slice(100, 901),
    );
  });

  it("exports each entry exactly once as NDJSON, invocation by invocation", async () => {
    const token = await reviewerToken();
    const seen: string[] = [];
    let cursor: string | null = null;
    let invocations = 0;
    do {
      const query: string = cursor ? `?limit=400&cursor=${encodeURIComponent(cursor)}` : "?limit=400";
      const res = await send(`/audit${query}`, {
        headers: { Authorization: `Bearer ${token}`, Accept: NDJSON },
      });
      expect(res.status).toBe(200);
      const lines = (await res.text()).split("\n").filter(Boolean);
      expect(lines.length).toBeLessThanOrEqual(400);
      seen.push(...lines.map((l) => JSON.parse(l).id));
      cursor = res.headers.get("X-Next-Cursor");
      invocations++;
    } while (cursor && invocations < 10);
    expect(invocations).toBe(3);
    expectEachOnce(seen, ids);
  });

  it("exports up to 5000 entries in one invocation by default", async () => {
    const res = await send("/audit", {
      headers: { Authorization: `Bearer ${await reviewerToken()}`, Accept: NDJSON },
    });
    const lines = (await res.text()).split("\n").filter(Boolean);
    expect(res.headers.get("X-Next-Cursor")).toBeNull();
    expectEachOnce(
      lines.map((l) => JSON.parse(l).id),
      ids,
    );
  });
});
