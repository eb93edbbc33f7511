/**
 * Review queries over the audit trail: one prefix listing (by email, by token or all), read
 * newest first from key metadata, outcomes joined by bulk reads, filters applied in memory.
 */
import { inDomains } from "../auth/authenticate.ts";
import {
  type AuditMeta,
  type AuditOutcome,
  type AuditOutcomeRecord,
  type AuditSummary,
  auditIdTime,
  auditKeys,
  invertedTime,
  shownOutcome,
} from "./store.ts";

/** A review query. Times are epoch ms; `until` and `since` are both inclusive. */
export interface AuditQuery {
  email?: string;
  token?: string;
  outcome?: AuditOutcome;
  requestId?: string;
  since?: number;
  until?: number;
  /** KV cursor from the previous page of the same query. */
  cursor?: string;
  /**
   * The reviewer's email domains, when its token is domain-limited: only entries whose target
   * is in them are seen (entries without a valid target are not). See {@link mayReview}.
   */
  domains?: readonly string[];
}

/**
 * True when a reviewer limited to `domains` (undefined: any) may see an entry with this target.
 * Domains match as for changes: `example.com` exactly, `*.example.com` its subdomains only.
 */
export function mayReview(domains: readonly string[] | undefined, email: string | undefined): boolean {
  if (domains === undefined) return true;
  if (email === undefined) return false;
  return inDomains(domains, email.slice(email.lastIndexOf("@") + 1).toLowerCase());
}

export interface AuditPage {
  entries: AuditSummary[];
  /** KV's cursor for the next page, exactly as KV gave it; null when the query is exhausted. */
  cursor: string | null;
}

export interface PageLimits {
  /** Most entries returned; also caps the keys read, since each key is one entry. */
  maxEntries: number;
  /** Most `list()` calls made (each reads at most 1000 keys). */
  maxListCalls: number;
}

/** KV returns at most this many keys per `list()`, and reads at most this many keys in bulk. */
const KV_LIST_MAX = 1000;
const KV_BULK_GET_MAX = 100;
const REFUSALS = new Set<AuditOutcome>(["denied", "invalid", "rate_limited"]);

/**
 * The listing prefix. Email first (usually the narrowest), else token, else everything.
 * With both `since` and `until`, the common leading digits of their inverted timestamps
 * narrow it further. That prefix must not change between pages, which is why it is only
 * taken from explicit bounds, never from "now".
 */
export function queryPrefix(q: AuditQuery): string {
  const base = q.email ? auditKeys.byEmail(q.email) : q.token ? auditKeys.byToken(q.token) : "entry:";
  if (q.since === undefined || q.until === undefined) return base;
  const a = invertedTime(q.until);
  const b = invertedTime(q.since);
  let i = 0;
  while (i < a.length && a[i] === b[i]) i++;
  return `${base}${a.slice(0, i)}`;
}

/** Entry id of a listed key: every entry and index key ends with it. */
const idOfKey = (name: string): string => name.slice(name.lastIndexOf(":") + 1);

/** Reads the outcome records of these ids, 100 per bulk read. */
async function outcomesOf(kv: KVNamespace, ids: string[]): Promise<Map<string, AuditOutcomeRecord>> {
  const out = new Map<string, AuditOutcomeRecord>();
  for (let i = 0; i < ids.length; i += KV_BULK_GET_MAX) {
    const chunk = ids.slice(i, i + KV_BULK_GET_MAX);
    const found = await kv.get<AuditOutcomeRecord>(chunk.map(auditKeys.outcome), "json");
    for (const id of chunk) {
      const record = found.get(auditKeys.outcome(id));
      if (record) out.set(id, record);
    }
  }
  return out;
}

/**
 * Runs one page of a review query: lists keys under {@link queryPrefix} from `q.cursor` in
 * calls of at most `maxEntries - found` keys, so a page never exceeds `maxEntries` and no
 * listed key is skipped, and keeps listing until the page is full, the listing is exhausted or
 * `maxListCalls` calls were made; it stops at the first entry older than `since` (everything
 * after it is older still). Filters (domain limits included) are applied to each key's
 * metadata, so a page may hold fewer entries than asked, even none, while `cursor` is not
 * null: the cursor then resumes exactly after the last key read. An `email` outside the
 * reviewer's domains lists nothing at all.
 */
export async function queryAudit(
  kv: KVNamespace,
  q: AuditQuery,
  limits: PageLimits,
  now = Date.now(),
): Promise<AuditPage> {
  if (q.email !== undefined && !mayReview(q.domains, q.email)) return { entries: [], cursor: null };
  const prefix = queryPrefix(q);
  const lowerEmail = q.email?.toLowerCase();
  const entries: AuditSummary[] = [];
  let cursor: string | null = q.cursor ?? null;
  let calls = 0;
  while (calls < limits.maxListCalls && entries.length < limits.maxEntries) {
    const limit = Math.min(KV_LIST_MAX, limits.maxEntries - entries.length);
    const page = await kv.list<AuditMeta>({ prefix, cursor, limit });
    calls++;
    cursor = page.list_complete ? null : page.cursor;
    const candidates: AuditSummary[] = [];
    for (const key of page.keys) {
      const id = idOfKey(key.name);
      const time = auditIdTime(id);
      if (q.since !== undefined && time < q.since) {
        cursor = null;
        break;
      }
      const meta = key.metadata;
      if (!meta || (q.until !== undefined && time > q.until)) continue;
      if (!mayReview(q.domains, meta.email)) continue;
      // A lifecycle entry is listed under its actor and under the token it is about.
      if (q.token && meta.token_id !== q.token && meta.target_id !== q.token) continue;
      if (lowerEmail && meta.email?.toLowerCase() !== lowerEmail) continue;
      if (q.requestId && meta.request_id !== q.requestId) continue;
      const { outcome, mac: _mac, ...rest } = meta;
      // A refusal's outcome is in its metadata; an open intent's is never a refusal.
      if (q.outcome && (outcome ? outcome !== q.outcome : REFUSALS.has(q.outcome))) continue;
      candidates.push({ id, time: new Date(time).toISOString(), ...rest, outcome: outcome ?? "pending" });
    }
    const open = candidates.filter((e) => e.outcome === "pending").map((e) => e.id);
    const results = open.length ? await outcomesOf(kv, open) : new Map<string, AuditOutcomeRecord>();
    for (const entry of candidates) {
      const result = results.get(entry.id);
      if (entry.outcome === "pending") {
        entry.outcome = shownOutcome(entry.id, result?.outcome, now);
        entry.upstream_status = result?.upstream_status;
        entry.latency_ms = result?.latency_ms;
      }
      if (!q.outcome || entry.outcome === q.outcome) entries.push(entry);
    }
    if (cursor === null) break;
  }
  return { entries, cursor };
}
