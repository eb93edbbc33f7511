/**
 * Hourly signed digests of the audit trail (the Cron Trigger in wrangler.toml). For each closed
 * hour, once it is {@link DIGEST_LAG_MS} old, a `digest:<hour>` record holds the count of the
 * hour's entries and outcomes, the SHA-256 of each `digest-part:` (the list of every record's key
 * name and MAC) and the SHA-256 of the previous digest's value: a chain, so deleting or editing a
 * digest breaks the next one. A large hour is digested across runs: each run makes at most
 * {@link RUN_MAX_LIST_CALLS} `list()` calls and keeps its place in `digest-progress`.
 * Layout: docs/storage.md; what it proves: docs/audit.md ("Proving the trail").
 */
import { sha256Hex } from "../model/mac.ts";
import {
  AUDIT_ID,
  type AuditWriteConfig,
  auditIdTime,
  expirationFor,
  invertedTime,
  putSigned,
} from "./store.ts";

export const HOUR_MS = 3_600_000;
/**
 * How long after its end an hour is digested: an intent's outcome is written up to ~25 s
 * (upstream deadline) + 30 s (`waitUntil`) + 4.1 s (retries) after the intent, and KV may take
 * about 60 s to show a write to a `list()` elsewhere: about 2 minutes, taken 5 times over.
 */
export const DIGEST_LAG_MS = 10 * 60_000;
/** `list()` calls one scheduled run makes at most (each reads up to 1000 keys and may write one part). */
export const RUN_MAX_LIST_CALLS = 20;
/** Listing blocks: a 7-digit prefix of the 13-digit inverted time covers 10^6 ms, so an hour spans 4 or 5. */
const BLOCK_DIGITS = 7;
/** The record kinds a digest covers, in digest order. */
export const DIGESTED_KINDS = ["entry:", "outcome:"] as const;
export const GENESIS = "genesis";

/** `2026-12-01T20`: the hour's UTC label in key names; sorts in time order. */
export const hourLabel = (hour: number): string => new Date(hour).toISOString().slice(0, 13);
/** Start (epoch ms) of the hour holding `ms`. */
export const hourOf = (ms: number): number => Math.floor(ms / HOUR_MS) * HOUR_MS;

export const digestKeys = {
  digest: (hour: number) => `digest:${hourLabel(hour)}`,
  part: (hour: number, n: number) => `digest-part:${hourLabel(hour)}:${String(n).padStart(4, "0")}`,
  progress: "digest-progress",
};

/** The value under `digest:<hour>`; its metadata holds its MAC. */
export interface Digest {
  v: 1;
  /** Start of the hour, ISO. */
  hour: string;
  entries: number;
  outcomes: number;
  /** SHA-256 (hex) of each `digest-part:<hour>:<n>` value, in order. */
  parts: string[];
  /** SHA-256 (hex) of the previous hour's digest value, or `genesis` for the first digest. */
  prev: string;
  made_at: string;
}

/** The value under `digest-progress`: where the next run continues. Not signed (see docs/audit.md). */
export interface DigestProgress {
  v: 1;
  /** Start of the hour being digested (epoch ms). */
  hour: number;
  /** Index into {@link DIGESTED_KINDS}, into the hour's blocks, and KV's cursor within the block. */
  kind: number;
  block: number;
  cursor: string | null;
  entries: number;
  outcomes: number;
  parts: string[];
  prev: string;
}

/** The listing prefixes that together hold every `<kind><audit id>` key of the hour, in key order. */
export function hourPrefixes(kind: string, hour: number): string[] {
  const first = Number(invertedTime(hour + HOUR_MS - 1).slice(0, BLOCK_DIGITS));
  const last = Number(invertedTime(hour).slice(0, BLOCK_DIGITS));
  const out: string[] = [];
  for (let b = first; b <= last; b++) out.push(`${kind}${String(b).padStart(BLOCK_DIGITS, "0")}`);
  return out;
}

/** The start of the hour an `entry:`/`outcome:` key belongs to (its id's time), or undefined. */
export function hourOfKey(name: string): number | undefined {
  const id = name.slice(name.indexOf(":") + 1);
  return AUDIT_ID.test(id) ? hourOf(auditIdTime(id)) : undefined;
}

/** One record's line in a digest part: key name, a space, its MAC (`-` when unsigned). */
export const partLine = (name: string, mac: string | undefined): string => `${name} ${mac ?? "-"}\n`;

/** The progress of a chain starting (or restarting) at `hour`. */
export const newProgress = (hour: number, prev: string): DigestProgress => ({
  v: 1,
  hour,
  kind: 0,
  block: 0,
  cursor: null,
  entries: 0,
  outcomes: 0,
  parts: [],
  prev,
});

/** True when the hour starting at `hour` may be digested at `now`. */
export const isDue = (hour: number, now: number): boolean => hour + HOUR_MS + DIGEST_LAG_MS <= now;

/**
 * Digests every due hour from `digest-progress` on, within `maxListCalls` list calls; returns the
 * hours digested and whether due work is left for the next run. With no progress yet, it starts
 * at the hour of the newest entry (or the last closed hour of an empty trail).
 */
export async function runDigests(
  kv: KVNamespace,
  cfg: AuditWriteConfig,
  now: number,
  maxListCalls = RUN_MAX_LIST_CALLS,
): Promise<{ digested: string[]; pending: boolean }> {
  let p = await kv.get<DigestProgress>(digestKeys.progress, "json");
  let dirty = false;
  if (!p) {
    const newest = (await kv.list({ prefix: DIGESTED_KINDS[0], limit: 1 })).keys[0];
    const start = newest ? hourOfKey(newest.name) : undefined;
    p = newProgress(start ?? hourOf(now - DIGEST_LAG_MS) - HOUR_MS, GENESIS);
    dirty = true;
  }
  const digested: string[] = [];
  for (let calls = 0; isDue(p.hour, now) && calls < maxListCalls; calls++) {
    // From the hour's end: a digest outlives every record it lists, so none is left without one.
    const expiration = expirationFor(p.hour + HOUR_MS, cfg.auditRetentionDays, now);
    const prefixes = hourPrefixes(DIGESTED_KINDS[p.kind], p.hour);
    const page = await kv.list<{ mac?: string }>({
      prefix: prefixes[p.block],
      cursor: p.cursor ?? undefined,
      limit: 1000,
    });
    dirty = true;
    let text = "";
    let n = 0;
    for (const key of page.keys) {
      if (hourOfKey(key.name) !== p.hour) continue;
      text += partLine(key.name, key.metadata?.mac);
      n++;
    }
    if (n > 0) {
      await putSigned(kv, cfg.auditSigningKey, digestKeys.part(p.hour, p.parts.length), text, { expiration });
      p.parts.push(await sha256Hex(text));
      if (p.kind === 0) p.entries += n;
      else p.outcomes += n;
    }
    if (!page.list_complete) {
      p.cursor = page.cursor;
      continue;
    }
    p.cursor = null;
    if (++p.block < prefixes.length) continue;
    p.block = 0;
    if (++p.kind < DIGESTED_KINDS.length) continue;
    const digest: Digest = {
      v: 1,
      hour: new Date(p.hour).toISOString(),
      entries: p.entries,
      outcomes: p.outcomes,
      parts: p.parts,
      prev: p.prev,
      made_at: new Date(now).toISOString(),
    };
    const value = JSON.stringify(digest);
    await putSigned(kv, cfg.auditSigningKey, digestKeys.digest(p.hour), value, { expiration });
    digested.push(hourLabel(p.hour));
    p = newProgress(p.hour + HOUR_MS, await sha256Hex(value));
  }
  if (dirty) await kv.put(digestKeys.progress, JSON.stringify(p));
  return { digested, pending: isDue(p.hour, now) };
}
