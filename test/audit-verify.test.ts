import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { kvSource, type TrailProblem, verifyTrail } from "../scripts/lib/verify-trail.ts";
import { digestKeys, GENESIS, HOUR_MS, hourOf, newProgress, runDigests } from "../src/audit/digest.ts";
import {
  type AuditEntry,
  type AuditWriteConfig,
  auditKeys,
  auditMeta,
  newAuditId,
  writeEntry,
  writeOutcome,
} from "../src/audit/store.ts";
import {
  base64url,
  macOf,
  parseKeyRing,
  parseSigningKey,
  signedMessage,
  utf8Length,
} from "../src/model/mac.ts";
import { WRITE_CONFIG } from "./audit-helpers.ts";
import { mint, patchUser, spyUpstream } from "./helpers.ts";

/**
 * verify's core (scripts/lib/verify-trail.ts, the code `npm run audit -- verify` runs) against a trail
 * written through src/audit/store.ts and digested by src/audit/digest.ts in miniflare's KV, then
 * tampered with by raw KV writes, as someone with write access to the namespace (and no key) could.
 * Every test starts from an empty AUDIT namespace.
 */
const ring = parseKeyRing(env.AUDIT_SIGNING_KEY);
/** Two past hours, digested; the trail under test lives in them. */
const H1 = hourOf(Date.parse("2026-11-20T10:30:00Z"));
const H2 = H1 + HOUR_MS;

async function wipe(): Promise<void> {
  for (;;) {
    const page = await env.AUDIT.list();
    if (page.keys.length === 0) return;
    await Promise.all(page.keys.map((k) => env.AUDIT.delete(k.name)));
  }
}

function entryAt(time: number, i: number, extra: Partial<AuditEntry> = {}): AuditEntry {
  return {
    v: 1,
    id: newAuditId(time),
    request_id: `req-${i}`,
    time: new Date(time).toISOString(),
    token_id: "tok_00000000000000a1",
    token_name: "verifier",
    email: `user${i % 3}@example.com`,
    fields: ["first_name"],
    values_mode: "masked",
    values: { first_name: "A**" },
    ...extra,
  };
}

/** Writes `n` entries in the hour (every third a refusal, the others with an outcome). */
async function seedHour(
  hour: number,
  n: number,
  cfg: AuditWriteConfig = WRITE_CONFIG,
): Promise<AuditEntry[]> {
  const out: AuditEntry[] = [];
  for (let i = 0; i < n; i++) {
    const t = hour + Math.floor(((i + 0.5) * HOUR_MS) / n);
    const refusal = i % 3 === 2;
    const entry = entryAt(t, i, refusal ? { outcome: "denied", reason: "scope" } : {});
    await writeEntry(env.AUDIT, entry, cfg);
    if (!refusal) {
      await writeOutcome(
        env.AUDIT,
        { v: 1, id: entry.id, time: entry.time, outcome: "accepted", upstream_status: 201, latency_ms: 5 },
        cfg,
      );
    }
    out.push(entry);
  }
  return out;
}

/** Digests every due hour from `start` until nothing is left (a fresh chain). */
async function digestFrom(start: number, now: number): Promise<number> {
  await env.AUDIT.put(digestKeys.progress, JSON.stringify(newProgress(start, GENESIS)));
  let runs = 0;
  for (;;) {
    runs++;
    if (!(await runDigests(env.AUDIT, WRITE_CONFIG, now)).pending) return runs;
  }
}

const verify = (since = H1, until = H2 + HOUR_MS - 1, keys = ring) =>
  verifyTrail(kvSource(env.AUDIT), keys, { since, until });

const kinds = (problems: TrailProblem[]) =>
  problems.map(({ kind, key }) => ({ kind, key })).sort((a, b) => a.key.localeCompare(b.key));

let trail: AuditEntry[];
beforeEach(async () => {
  await wipe();
  trail = [...(await seedHour(H1, 6)), ...(await seedHour(H2, 6))];
  await digestFrom(H1, H2 + 2 * HOUR_MS);
});
afterEach(() => vi.restoreAllMocks());

describe("verify on an untouched trail", () => {
  it("finds no problem, counts every record, and names the newest digest as head", async () => {
    const report = await verify();
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ entries: 12, outcomes: 8, indexes: 24, digests: 2, undigested: 0 });
    expect(report.head?.key).toBe(digestKeys.digest(H2));
    const digest = JSON.parse((await env.AUDIT.get(digestKeys.digest(H1))) ?? "{}");
    expect(digest).toMatchObject({ entries: 6, outcomes: 4, prev: GENESIS });
  });

  it("verifies what the Worker itself wrote: intent, outcome and refusal, all signed", async () => {
    await wipe();
    const calls = spyUpstream();
    const secret = await mint(["users:write:first_name"]);
    expect((await patchUser("ada@example.com", { first_name: "Ada" }, secret)).status).toBe(202);
    expect((await patchUser("ada@example.com", { last_name: "X" }, secret)).status).toBe(403);
    expect(calls).toHaveLength(1);
    const now = Date.now();
    await digestFrom(hourOf(now), now + 2 * HOUR_MS);
    const report = await verify(now - HOUR_MS, now);
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ entries: 2, outcomes: 1, indexes: 4, digests: 1 });
  });
});

describe("verify names each kind of tampering, with its key", () => {
  it("an edited value is altered", async () => {
    const key = auditKeys.entry(trail[0].id);
    const { value, metadata } = await env.AUDIT.getWithMetadata(key);
    await env.AUDIT.put(key, String(value).replace('"req-0"', '"req-9"'), { metadata });
    const { problems } = await verify();
    expect(kinds(problems)).toEqual([{ kind: "altered", key }]);
    expect(problems[0].detail).toMatch(/metadata does not match its value/);
  });

  it("an edited value with metadata edited to match is still altered", async () => {
    const key = auditKeys.entry(trail[1].id);
    const { value, metadata } = await env.AUDIT.getWithMetadata<AuditEntry, { mac: string }>(key, "json");
    const edited = { ...(value as AuditEntry), email: "mallory@example.com" };
    await env.AUDIT.put(key, JSON.stringify(edited), {
      metadata: { ...auditMeta(edited), mac: metadata?.mac },
    });
    const { problems } = await verify();
    expect(kinds(problems)).toEqual([{ kind: "altered", key }]);
    expect(problems[0].detail).toMatch(/does not match its MAC/);
  });

  it("edited metadata (what listings show) is altered", async () => {
    const key = auditKeys.entry(trail[2].id);
    const { value, metadata } = await env.AUDIT.getWithMetadata<Record<string, unknown>>(key);
    await env.AUDIT.put(key, String(value), { metadata: { ...metadata, outcome: "invalid" } });
    const { problems } = await verify();
    expect(kinds(problems)).toEqual([{ kind: "altered", key }]);
  });

  it("edited metadata on an index key is altered", async () => {
    const key = auditKeys.byEmail(String(trail[3].email), trail[3].id);
    const { metadata } = await env.AUDIT.getWithMetadata<Record<string, unknown>>(key);
    await env.AUDIT.put(key, "", { metadata: { ...metadata, token_name: "someone else" } });
    expect(kinds((await verify()).problems)).toEqual([{ kind: "altered", key }]);
  });

  it("a value moved to another key is unexpected there, and missing where it was", async () => {
    const from = auditKeys.entry(trail[4].id);
    const to = auditKeys.entry(newAuditId(Date.parse(trail[4].time) + 1));
    const { value, metadata } = await env.AUDIT.getWithMetadata(from);
    await env.AUDIT.put(to, String(value), { metadata });
    await env.AUDIT.delete(from);
    const { problems } = await verify();
    expect(kinds(problems)).toEqual(
      kinds([
        { kind: "missing", key: from, detail: "" },
        { kind: "unexpected", key: to, detail: "" },
      ]),
    );
  });

  it("a deleted entry is missing", async () => {
    const key = auditKeys.entry(trail[6].id);
    await env.AUDIT.delete(key);
    expect(kinds((await verify()).problems)).toEqual([{ kind: "missing", key }]);
  });

  it("a deleted outcome is missing", async () => {
    const key = auditKeys.outcome(trail[7].id);
    await env.AUDIT.delete(key);
    expect(kinds((await verify()).problems)).toEqual([{ kind: "missing", key }]);
  });

  it("a forged entry (MAC from another key) is unexpected, and so is a forged index key", async () => {
    const forger = { ...WRITE_CONFIG, auditSigningKey: parseSigningKey(`test:${btoa("f".repeat(32))}`) };
    const forged = entryAt(H1 + 60_000, 99, { token_id: "tok_00000000000000f0" });
    await writeEntry(env.AUDIT, forged, forger);
    const index = auditKeys.byEmail("planted@example.com", newAuditId(H1 + 120_000));
    await env.AUDIT.put(index, "", { metadata: { ...auditMeta(forged), mac: "test:AAAA" } });
    expect(kinds((await verify()).problems)).toEqual(
      kinds([
        { kind: "unexpected", key: auditKeys.entry(forged.id), detail: "" },
        { kind: "unexpected", key: index, detail: "" },
      ]),
    );
  });

  it("a deleted digest is missing and breaks the chain at the next one", async () => {
    await env.AUDIT.delete(digestKeys.digest(H1));
    const { problems } = await verify();
    expect(kinds(problems)).toEqual(
      kinds([
        { kind: "missing", key: digestKeys.digest(H1), detail: "" },
        { kind: "broken_chain", key: digestKeys.digest(H2), detail: "" },
      ]),
    );
  });

  it("an edited digest is altered and breaks the chain at the next one", async () => {
    const key = digestKeys.digest(H1);
    const { value, metadata } = await env.AUDIT.getWithMetadata(key);
    await env.AUDIT.put(key, String(value).replace('"entries":6', '"entries":5'), { metadata });
    expect(kinds((await verify()).problems)).toEqual(
      kinds([
        { kind: "altered", key, detail: "" },
        { kind: "broken_chain", key: digestKeys.digest(H2), detail: "" },
      ]),
    );
  });

  it("a deleted newest digest is missing (the digester's progress has passed it)", async () => {
    await env.AUDIT.delete(digestKeys.digest(H2));
    expect(kinds((await verify()).problems)).toEqual([{ kind: "missing", key: digestKeys.digest(H2) }]);
  });

  it("an edited digest part is altered, and its hour is checked by MAC only", async () => {
    const key = digestKeys.part(H1, 0);
    const { value, metadata } = await env.AUDIT.getWithMetadata(key);
    await env.AUDIT.put(key, `${value}entry:0000000000000-0000000000000000 x\n`, { metadata });
    const { problems } = await verify();
    expect(kinds(problems)).toEqual([{ kind: "altered", key }]);
  });

  it("an entry signed correctly but written after its hour's digest is late, not unexpected", async () => {
    const late = entryAt(H1 + 59 * 60_000, 50);
    await writeEntry(env.AUDIT, late, WRITE_CONFIG);
    const { problems } = await verify();
    expect(kinds(problems)).toEqual([{ kind: "late", key: auditKeys.entry(late.id) }]);
  });

  it("an entry written without a MAC (before signing) is unsigned", async () => {
    const old = entryAt(H2 + HOUR_MS + 60_000, 60);
    const name = auditKeys.entry(old.id);
    await env.AUDIT.put(name, JSON.stringify(old), { metadata: auditMeta(old) });
    await env.AUDIT.put(auditKeys.byToken(old.token_id, old.id), "", { metadata: auditMeta(old) });
    await env.AUDIT.put(auditKeys.byEmail(String(old.email), old.id), "", { metadata: auditMeta(old) });
    const { problems } = await verify(H1, H2 + 2 * HOUR_MS - 1);
    expect(kinds(problems)).toEqual([{ kind: "unsigned", key: name }]);
  });

  it("a deleted entry in a not yet digested hour is found through its outcome", async () => {
    const [entry] = await seedHour(H2 + HOUR_MS, 1);
    await env.AUDIT.delete(auditKeys.entry(entry.id));
    const { problems } = await verify(H1, H2 + 2 * HOUR_MS - 1);
    expect(kinds(problems)).toEqual([{ kind: "missing", key: auditKeys.entry(entry.id) }]);
  });
});

describe("key rotation", () => {
  it("entries under a retired key verify while the ring holds it, and are altered without it", async () => {
    const next = parseSigningKey(`k2:${btoa("n".repeat(32))}`);
    const [rotated] = await seedHour(H2 + HOUR_MS, 1, { ...WRITE_CONFIG, auditSigningKey: next });
    const until = H2 + 2 * HOUR_MS - 1;
    const both = new Map([...ring, [next.kid, next]]);
    expect((await verify(H1, until, both)).problems).toEqual([]);
    const without = await verify(H1, until, ring);
    expect(kinds(without.problems)).toEqual(
      kinds([
        { kind: "altered", key: auditKeys.entry(rotated.id), detail: "" },
        { kind: "altered", key: auditKeys.outcome(rotated.id), detail: "" },
      ]),
    );
    expect(without.problems[0].detail).toMatch(/key id/);
  });

  it("signs the canonical message: key name, metadata and value, length-prefixed", async () => {
    const key = parseSigningKey(`k:${btoa("s".repeat(32))}`);
    expect(await macOf(key, "a", "b", "c")).not.toBe(await macOf(key, "a", "", "bc"));
    expect(await macOf(key, "a", "b", "c")).toMatch(/^k:[A-Za-z0-9_-]{43}$/);
  });

  it("builds the message as documented: each part's TextEncoder bytes, length-prefixed", () => {
    // The reference: docs/storage.md's format spelled out part by part with TextEncoder.
    const enc = new TextEncoder();
    const reference = (parts: string[]) => {
      const bytes = parts.map((p) => enc.encode(p));
      const chunks = bytes.flatMap((b, i) => [
        enc.encode(`${i === 0 ? "village-edge-audit-v1\n" : "\n"}${b.length}:`),
        b,
      ]);
      return Uint8Array.from(chunks.flatMap((c) => [...c]));
    };
    const samples = [
      "",
      "entry:01JD",
      "Zoë Ørsted",
      "名前",
      "emoji 😀 and 𝄞",
      "lone \ud800 high",
      "lone \udc00 low",
      "high at end \ud83d",
      '{"a":"\u0000\u007f\u0080\u07ff\u0800\uffff"}',
    ];
    for (const a of samples) {
      expect(utf8Length(a)).toBe(enc.encode(a).length);
      for (const b of samples.slice(0, 4)) {
        expect([...signedMessage(a, b, `${b}${a}`)]).toEqual([...reference([a, b, `${b}${a}`])]);
      }
    }
  });

  it("encodes MACs as the platform's base64, made url-safe and unpadded", () => {
    const viaBtoa = (bytes: Uint8Array) =>
      btoa(String.fromCharCode(...bytes))
        .replaceAll("+", "-")
        .replaceAll("/", "_")
        .replace(/=+$/, "");
    for (let n = 0; n <= 40; n++) {
      const bytes = crypto.getRandomValues(new Uint8Array(n));
      expect(base64url(bytes)).toBe(viaBtoa(bytes));
    }
    expect(base64url(new Uint8Array([0xfb, 0xff, 0xfe]))).toBe("-__-");
  });
});
