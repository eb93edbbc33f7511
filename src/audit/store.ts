/**
 * The audit trail in the AUDIT KV namespace: ids, key layout, record types, writes and the
 * single-entry read. Listing lives in query.ts. Key layout: docs/storage.md.
 *
 * Every AUDIT write goes through {@link putSigned} (directly or through the writers here), so
 * every record carries a MAC (src/model/mac.ts) in its metadata: a new kind of record must be
 * written with it too, never with a raw `put`.
 */

import type { AuditValues } from "../config.ts";
import type { RefusalReason } from "../http/reasons.ts";
import { canonicalEmail } from "../model/email.ts";
import type { Field } from "../model/fields.ts";
import { toHex } from "../model/hex.ts";
import { macOf, type SigningKey } from "../model/mac.ts";
import { clip } from "../model/text.ts";

/** What a write needs from the configuration: retention and the signing key. */
export interface AuditWriteConfig {
  auditRetentionDays: number;
  auditSigningKey: SigningKey;
}

/** Outcomes of a change Village was asked to make. */
export type UpstreamAuditOutcome =
  | "accepted"
  | "not_found"
  | "rejected_by_village"
  | "upstream_error"
  | "timeout";
/** Outcomes of a request refused before anything was forwarded. */
export type RefusalOutcome = "denied" | "invalid" | "rate_limited";
/** Every outcome a reviewer can see, `pending`/`unknown` included. */
export const OUTCOMES = [
  "pending",
  "unknown",
  "accepted",
  "not_found",
  "rejected_by_village",
  "upstream_error",
  "timeout",
  "denied",
  "invalid",
  "rate_limited",
] as const;
export type AuditOutcome = (typeof OUTCOMES)[number];

/**
 * An intent still without an outcome this long after it was written is shown as `unknown`
 * instead of `pending`: the upstream deadline (at most 25 s), `waitUntil`'s 30 s and KV's
 * roughly 60 s propagation all fit well inside it.
 */
export const OUTCOME_OVERDUE_MS = 5 * 60_000;
/** KV refuses expirations less than 60 s ahead. */
const KV_MIN_TTL_S = 60;
/** Delays before the second and third attempt of a deferred write: over a second, KV's per-key write rate. */
const RETRY_DELAYS_MS = [1100, 3000];

const MAX_TS = 9_999_999_999_999;
/** `<13-digit inverted epoch ms>-<16 hex random>`: unique, server-made, sorts newest first. */
export const AUDIT_ID = /^\d{13}-[0-9a-f]{16}$/;

/** The inverted, zero-padded timestamp that starts ids and makes keys list newest first. */
export const invertedTime = (ms: number): string => String(MAX_TS - ms).padStart(13, "0");

/** A new audit id for an entry written at `now`; never taken from the caller. */
export function newAuditId(now = Date.now()): string {
  return `${invertedTime(now)}-${toHex(crypto.getRandomValues(new Uint8Array(8)))}`;
}

/** Epoch ms at which the entry with this id was written. */
export const auditIdTime = (id: string): number => MAX_TS - Number(id.slice(0, 13));

/** Every AUDIT key. Index keys use the lowercased email so reviewers need not match case. */
export const auditKeys = {
  entry: (id: string) => `entry:${id}`,
  outcome: (id: string) => `outcome:${id}`,
  byEmail: (email: string, id = "") => `by-email:${canonicalEmail(email)}:${id}`,
  byToken: (tokenId: string, id = "") => `by-token:${tokenId}:${id}`,
};

/** Token lifecycle actions (src/tokens/), as the trail names them. */
export const TOKEN_EVENTS = ["token.create", "token.rotate", "token.revoke"] as const;
export type TokenEvent = (typeof TOKEN_EVENTS)[number];

/** What a lifecycle entry records of the token it is about: never a secret, never a hash. */
export interface TokenEventTarget {
  /** Absent only when a refused create named a token that was never made. */
  id?: string;
  name: string;
  scopes: string[];
  domains?: string[];
  origins?: string[];
  expires_at?: string;
  /** Rotations: when the old secret stops working. */
  previous_expires_at?: string;
}

/** What every `entry:` value starts with: the entry, the request and the acting token. */
interface EntryHead {
  v: 1;
  id: string;
  /** The request id (caller's `X-Request-Id` or generated); not unique, never a key. */
  request_id: string;
  time: string;
  token_id: string;
  token_name: string;
  origin?: string;
  ip?: string;
  user_agent?: string;
}

/**
 * The value under `entry:<id>` for a token lifecycle action: who acted (`token_id`, `token_name`:
 * an admin token, or `operator:<user>` for the CLI's direct KV path), which action, on which
 * token, and what came of it (`accepted`, or a refusal with its `reason`).
 */
export interface TokenEventEntry extends EntryHead {
  kind: "token";
  event: TokenEvent;
  /** The token acted on; absent when a refused request named none that validated. */
  target?: TokenEventTarget;
  outcome: "accepted" | RefusalOutcome;
  reason?: RefusalReason;
  over_budget?: true;
}

/** The value under `entry:<id>`: the intent of a forwarded change, or a refusal. */
export interface AuditEntry extends EntryHead {
  /** Target address as validated and forwarded; absent when the path held no valid address. */
  email?: string;
  fields: Field[];
  values_mode: AuditValues;
  values?: Partial<Record<Field, string>>;
  /** Present only on refusals: their entry is final and gets no outcome record. */
  outcome?: RefusalOutcome;
  /** Exactly why a refusal was refused (src/http/reasons.ts; entries before 2026-12 hold the problem type). */
  reason?: RefusalReason;
  /** On the one refusal a minute recorded beyond the caller's refusal budget: later ones are in the logs only. */
  over_budget?: true;
}

/** The value under `outcome:<id>`, written after Village answered (or did not). */
export interface AuditOutcomeRecord {
  v: 1;
  id: string;
  time: string;
  outcome: UpstreamAuditOutcome;
  upstream_status?: number;
  latency_ms: number;
}

/** Metadata of `entry:`, `by-email:` and `by-token:` keys: what a listing shows, at most 1024 bytes. */
export interface AuditMeta {
  request_id: string;
  token_id: string;
  token_name: string;
  email?: string;
  fields: Field[];
  ip?: string;
  origin?: string;
  outcome?: RefusalOutcome | "accepted";
  reason?: RefusalReason;
  over_budget?: true;
  /** Lifecycle entries: the action and the token acted on (its name is in the entry). */
  event?: TokenEvent;
  target_id?: string;
  /** MAC of the `entry:` record (key name, this metadata without `mac`, value); absent before signing. */
  mac?: string;
}

/** Metadata of `outcome:` keys (and of digest records): the record's MAC. */
export interface SignedMeta {
  mac: string;
}

/** One entry as the review API lists it. */
export interface AuditSummary extends Omit<AuditMeta, "outcome" | "mac"> {
  id: string;
  time: string;
  outcome: AuditOutcome;
  upstream_status?: number;
  latency_ms?: number;
}

/** One entry with everything stored about it, as `GET /audit/:id` shows it. */
export interface AuditDetail extends Omit<AuditEntry, "v" | "outcome" | "fields" | "values_mode"> {
  fields?: Field[];
  values_mode?: AuditValues;
  kind?: "token";
  event?: TokenEvent;
  target?: TokenEventTarget;
  outcome: AuditOutcome;
  upstream_status?: number;
  latency_ms?: number;
  outcome_time?: string;
}

/** Byte budgets of the metadata strings; the test at maximum sizes keeps the sum under 1024. */
export const META_BUDGET = { request_id: 128, token_name: 100, ip: 46, origin: 90 } as const;

/**
 * A metadata string: printable ASCII only (KV sends metadata in an HTTP header), other
 * characters shown as `?` (the entry's value keeps them), clipped to its byte budget.
 */
const metaText = (text: string, budget: number): string => clip(text.replace(/[^\x20-\x7e]/gu, "?"), budget);

/** The summary stored as key metadata. Email (ASCII) and field names are bounded by validation. */
export function auditMeta(entry: AuditEntry | TokenEventEntry): AuditMeta {
  if ("kind" in entry) {
    return {
      request_id: metaText(entry.request_id, META_BUDGET.request_id),
      token_id: entry.token_id,
      token_name: metaText(entry.token_name, META_BUDGET.token_name),
      fields: [],
      ip: entry.ip === undefined ? undefined : metaText(entry.ip, META_BUDGET.ip),
      origin: entry.origin === undefined ? undefined : metaText(entry.origin, META_BUDGET.origin),
      outcome: entry.outcome,
      reason: entry.reason,
      over_budget: entry.over_budget,
      event: entry.event,
      target_id: entry.target?.id,
    };
  }
  return {
    request_id: metaText(entry.request_id, META_BUDGET.request_id),
    token_id: entry.token_id,
    token_name: metaText(entry.token_name, META_BUDGET.token_name),
    email: entry.email,
    fields: entry.fields,
    ip: entry.ip === undefined ? undefined : metaText(entry.ip, META_BUDGET.ip),
    origin: entry.origin === undefined ? undefined : metaText(entry.origin, META_BUDGET.origin),
    outcome: entry.outcome,
    reason: entry.reason,
    over_budget: entry.over_budget,
  };
}

/** Shown outcome of an entry: its refusal, its recorded outcome, or pending/unknown by age. */
export function shownOutcome(
  id: string,
  final: RefusalOutcome | UpstreamAuditOutcome | undefined,
  now: number,
): AuditOutcome {
  if (final) return final;
  return now - auditIdTime(id) > OUTCOME_OVERDUE_MS ? "unknown" : "pending";
}

/** Absolute expiration (epoch s) for an entry's keys: retention from the entry's time, never under KV's minimum. */
export function expirationFor(entryTimeMs: number, retentionDays: number, now = Date.now()): number {
  const wanted = Math.floor(entryTimeMs / 1000) + retentionDays * 86_400;
  return Math.max(wanted, Math.ceil(now / 1000) + KV_MIN_TTL_S + 1);
}

/** A lifecycle entry is indexed under its actor and under the token it is about. */
const entryKeys = (entry: AuditEntry | TokenEventEntry): string[] => [
  auditKeys.entry(entry.id),
  auditKeys.byToken(entry.token_id, entry.id),
  ...("kind" in entry
    ? entry.target?.id && entry.target.id !== entry.token_id
      ? [auditKeys.byToken(entry.target.id, entry.id)]
      : []
    : entry.email
      ? [auditKeys.byEmail(entry.email, entry.id)]
      : []),
];

/** The part of a KV namespace that audit writes use: a Workers binding, or the CLI's adapter. */
export interface AuditWriter {
  put(key: string, value: string, options: { expiration?: number; metadata?: unknown }): Promise<void>;
  delete(key: string): Promise<void>;
}

/**
 * Writes one signed record: `metadata` gains `mac`, computed over the key name, the metadata
 * as given (JSON) and the value. Returns the MAC.
 */
export async function putSigned(
  kv: AuditWriter,
  key: SigningKey,
  name: string,
  value: string,
  options: { expiration?: number; metadata?: Record<string, unknown> } = {},
): Promise<string> {
  const mac = await macOf(key, name, options.metadata ? JSON.stringify(options.metadata) : "", value);
  await kv.put(name, value, { expiration: options.expiration, metadata: { ...options.metadata, mac } });
  return mac;
}

/**
 * Writes an entry under its own key and its index keys, all at once. The entry is signed once
 * (one HMAC); the index keys carry the same metadata, MAC included, which verify compares
 * with the entry's. If any write fails, the ones that succeeded are deleted (best effort) and
 * the first error is thrown: the caller must then not forward the change.
 */
export async function writeEntry(
  kv: AuditWriter,
  entry: AuditEntry | TokenEventEntry,
  cfg: AuditWriteConfig,
): Promise<void> {
  const expiration = expirationFor(Date.parse(entry.time), cfg.auditRetentionDays);
  const summary = auditMeta(entry);
  const keys = entryKeys(entry);
  const value = JSON.stringify(entry);
  const metadata: AuditMeta = {
    ...summary,
    mac: await macOf(cfg.auditSigningKey, keys[0], JSON.stringify(summary), value),
  };
  const results = await Promise.allSettled(
    keys.map((key, i) => kv.put(key, i === 0 ? value : "", { expiration, metadata })),
  );
  const failed = results.find((r) => r.status === "rejected");
  if (!failed) return;
  await Promise.allSettled(keys.filter((_, i) => results[i].status === "fulfilled").map((k) => kv.delete(k)));
  throw failed.reason;
}

/** Runs `write` up to three times, waiting between attempts; rethrows the last error. */
export async function withRetry(write: () => Promise<void>, delays = RETRY_DELAYS_MS): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await write();
    } catch (err) {
      if (attempt >= delays.length) throw err;
      await new Promise((resolve) => setTimeout(resolve, delays[attempt]));
    }
  }
}

/** Writes a signed outcome under `outcome:<id>`, expiring with its intent. */
export async function writeOutcome(
  kv: KVNamespace,
  record: AuditOutcomeRecord,
  cfg: AuditWriteConfig,
): Promise<void> {
  const expiration = expirationFor(auditIdTime(record.id), cfg.auditRetentionDays);
  await putSigned(kv, cfg.auditSigningKey, auditKeys.outcome(record.id), JSON.stringify(record), {
    expiration,
  });
}

/** Reads one entry joined with its outcome (one bulk read), or null when there is none. */
export async function readEntry(kv: KVNamespace, id: string, now = Date.now()): Promise<AuditDetail | null> {
  if (!AUDIT_ID.test(id)) return null;
  const entryKey = auditKeys.entry(id);
  const outcomeKey = auditKeys.outcome(id);
  const found = await kv.get<AuditEntry | AuditOutcomeRecord>([entryKey, outcomeKey], "json");
  const entry = found.get(entryKey) as AuditEntry | TokenEventEntry | null | undefined;
  if (!entry) return null;
  const result = found.get(outcomeKey) as AuditOutcomeRecord | null | undefined;
  const { v: _v, outcome, ...rest } = entry as AuditEntry | TokenEventEntry;
  return {
    ...rest,
    outcome: shownOutcome(id, outcome ?? result?.outcome, now),
    upstream_status: result?.upstream_status,
    latency_ms: result?.latency_ms,
    outcome_time: result?.time,
  };
}
