import { env } from "cloudflare:test";
import { beforeAll, describe, expect, it } from "vitest";
import { kvSource, verifyTrail } from "../scripts/lib/verify-trail.ts";
import {
  type Digest,
  digestKeys,
  GENESIS,
  HOUR_MS,
  hourOf,
  newProgress,
  RUN_MAX_LIST_CALLS,
  runDigests,
} from "../src/audit/digest.ts";
import { type AuditEntry, newAuditId, writeEntry, writeOutcome } from "../src/audit/store.ts";
import { parseKeyRing } from "../src/model/mac.ts";
import { WRITE_CONFIG } from "./audit-helpers.ts";

/**
 * One hour holding 10,000 entries (8,000 refusals, 2,000 intents with their outcomes), written through src/audit/store.ts into
 * miniflare's KV, digested by the scheduled code with its real per-run budget, then verified.
 * This file writes nothing else to AUDIT.
 */
const COUNT = 10_000;
const HOUR = hourOf(Date.parse("2026-11-10T08:00:00Z"));
const NOW = HOUR + 3 * HOUR_MS;

async function digestAll(maxListCalls: number): Promise<number> {
  await env.AUDIT.put(digestKeys.progress, JSON.stringify(newProgress(HOUR, GENESIS)));
  for (let runs = 1; ; runs++) {
    if (!(await runDigests(env.AUDIT, WRITE_CONFIG, NOW, maxListCalls)).pending) return runs;
  }
}

const digestOf = async (): Promise<Omit<Digest, "made_at">> => {
  const { made_at: _, ...rest } = JSON.parse(
    (await env.AUDIT.get(digestKeys.digest(HOUR))) ?? "null",
  ) as Digest;
  return rest;
};

let runs = 0;
beforeAll(async () => {
  const work: Promise<void>[] = [];
  for (let i = 0; i < COUNT; i++) {
    const time = HOUR + Math.floor((i * HOUR_MS) / COUNT);
    const entry: AuditEntry = {
      v: 1,
      id: newAuditId(time),
      request_id: `big-${i}`,
      time: new Date(time).toISOString(),
      token_id: "tok_0000000000000b16",
      token_name: "bulk",
      fields: ["phone_number"],
      values_mode: "masked",
      values: { phone_number: "+44********67" },
      ...(i % 5 !== 0 ? { outcome: "invalid" as const, reason: "validation" } : {}),
    };
    const outcome = {
      v: 1 as const,
      id: entry.id,
      time: entry.time,
      outcome: "accepted" as const,
      upstream_status: 201,
      latency_ms: 7,
    };
    work.push(
      writeEntry(env.AUDIT, entry, WRITE_CONFIG).then(() =>
        i % 5 === 0 ? writeOutcome(env.AUDIT, outcome, WRITE_CONFIG) : undefined,
      ),
    );
    if (work.length >= 200) await Promise.all(work.splice(0));
  }
  await Promise.all(work);
  runs = await digestAll(RUN_MAX_LIST_CALLS);
}, 300_000);

describe("a clean hour of 10,000 entries", () => {
  it("is digested across several scheduled runs, each within its list budget", async () => {
    // 10 pages of entries and 2 of outcomes, plus the hour's empty blocks: more than one run's 20.
    expect(runs).toBeGreaterThan(1);
    expect(await digestOf()).toMatchObject({ entries: COUNT, outcomes: COUNT / 5, prev: GENESIS });
  });

  it("gets the same digest whatever the per-run budget", async () => {
    const first = await digestOf();
    expect(await digestAll(3)).toBeGreaterThan(runs);
    expect(await digestOf()).toEqual(first);
  });

  it("verifies with no false alarm", async () => {
    const report = await verifyTrail(kvSource(env.AUDIT), parseKeyRing(env.AUDIT_SIGNING_KEY), {
      since: HOUR,
      until: HOUR + HOUR_MS - 1,
    });
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({
      entries: COUNT,
      outcomes: COUNT / 5,
      indexes: COUNT,
      digests: 1,
      undigested: 0,
    });
  });
});
