/**
 * Opaque API tokens: format, hashing and the TOKENS KV records.
 * Runs both in the Worker and in the operators' CLI (Node), so it uses only Web APIs.
 * Key layout: docs/storage.md.
 */
import * as z from "zod/mini";
import { toHex } from "../model/hex.ts";
import { ADMIN_MAX_LIFETIME_MS, ADMIN_SCOPE, MAX_OVERLAP_S, SCOPES, type Scope } from "./scopes.ts";

/** Every token starts with this, so secret scanners can find leaked ones. */
export const TOKEN_PREFIX = "vge_";
/** `vge_` + 64 hex (256 random bits) + 8 hex CRC-32 checksum. */
export const TOKEN_PATTERN = /^vge_[0-9a-f]{64}[0-9a-f]{8}$/;
export const TOKEN_LENGTH = TOKEN_PREFIX.length + 72;

export {
  ADMIN_MAX_LIFETIME_MS,
  ADMIN_SCOPE,
  DEFAULT_OVERLAP_S,
  MAX_OVERLAP_S,
  SCOPES,
  type Scope,
} from "./scopes.ts";

const hashKey = (hash: string) => `token:${hash}`;
const idKey = (id: string) => `token-id:${id}`;

const DOMAIN = /^(\*\.)?(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/;
const ORIGIN = /^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/;

const buildTokenRecordSchema = () =>
  z.object({
    v: z.literal(1),
    id: z.string().check(z.regex(/^tok_[0-9a-f]{16}$/)),
    name: z.string().check(z.minLength(1), z.maxLength(100)),
    scopes: z.array(z.enum(SCOPES)).check(z.minLength(1)),
    domains: z.optional(z.array(z.string().check(z.regex(DOMAIN)))),
    origins: z.optional(z.array(z.string().check(z.regex(ORIGIN)))),
    expires_at: z.optional(z.iso.datetime()),
    created_at: z.iso.datetime(),
  });
let recordSchema: ReturnType<typeof buildTokenRecordSchema> | undefined;

/**
 * The schema of the record stored under `token:<sha256>`, built on first use (a cold isolate
 * pays for it with its first token, not at startup).
 */
export const tokenRecordSchema = () => (recordSchema ??= buildTokenRecordSchema());

/** The record stored under `token:<sha256>`; also what the CLI shows (with `hash`, never the secret). */
export type TokenRecord = z.infer<ReturnType<typeof buildTokenRecordSchema>>;

/**
 * The record under `token-id:<id>`: the token record plus its current secret's hash, its
 * revocation time and, after a rotation, the old secret's hash and when it stops working.
 */
export type TokenIndexRecord = TokenRecord & {
  hash: string;
  revoked_at?: string;
  rotated_at?: string;
  previous_hash?: string;
  previous_expires_at?: string;
};

/** What a token looks like to operators: its id record without any hash, and its status. */
export type TokenView = Omit<TokenIndexRecord, "hash" | "previous_hash"> & { status: TokenStatus };
export type TokenStatus = "active" | "revoked" | "expired";

/** A token's status at `now`. */
export const statusOf = (r: { revoked_at?: string; expires_at?: string }, now = Date.now()): TokenStatus =>
  r.revoked_at ? "revoked" : r.expires_at && Date.parse(r.expires_at) <= now ? "expired" : "active";

/** The id record without its hashes (what show, revoke and rotate answer), with its status. */
export function publicView(r: TokenIndexRecord, now = Date.now()): TokenView {
  const { hash: _hash, previous_hash: _previous, ...rest } = r;
  if (rest.previous_expires_at && Date.parse(rest.previous_expires_at) <= now) {
    delete rest.previous_expires_at;
  }
  return { ...rest, status: statusOf(r, now) };
}

/** What the CLI passes to create a token. */
export interface NewToken {
  name: string;
  scopes: string[];
  domains?: string[];
  origins?: string[];
  expiresAt?: Date;
}

/** The minimal KV surface this module needs: a Workers KVNamespace, or the CLI's adapter. */
export interface KvLike {
  get(key: string, type: "text"): Promise<string | null>;
  put(key: string, value: string, options?: { expiration?: number; metadata?: unknown }): Promise<void>;
  delete(key: string): Promise<void>;
  list(options: { prefix: string; cursor?: string; limit?: number }): Promise<{
    keys: { name: string; metadata?: unknown }[];
    list_complete: boolean;
    cursor?: string;
  }>;
}

let crcTable: Uint32Array | undefined;
/** The CRC-32 lookup table, computed on the first checksum. */
function crcTableOf(): Uint32Array {
  if (crcTable) return crcTable;
  crcTable = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    crcTable[n] = c >>> 0;
  }
  return crcTable;
}

function crc32Hex(text: string): string {
  const table = crcTableOf();
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    crc = table[(crc ^ text.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  }
  return ((crc ^ 0xffffffff) >>> 0).toString(16).padStart(8, "0");
}

const encoder = new TextEncoder();

function randomHex(bytes: number): string {
  return toHex(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** True when the string has the token shape and a matching checksum: no KV read needed to reject garbage. */
export function isWellFormedToken(secret: string): boolean {
  if (secret.length !== TOKEN_LENGTH || !TOKEN_PATTERN.test(secret)) return false;
  return crc32Hex(secret.slice(0, -8)) === secret.slice(-8);
}

/** Generates a new secret: prefix, 256 random bits, checksum. */
export function generateSecret(): string {
  const body = `${TOKEN_PREFIX}${randomHex(32)}`;
  return `${body}${crc32Hex(body)}`;
}

/** SHA-256 of the secret, hex: the only form in which a token is stored. */
export async function hashSecret(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", encoder.encode(secret));
  return toHex(new Uint8Array(digest));
}

/**
 * Looks a presented secret up. Returns the record, or null for unknown, revoked
 * (deleted) or expired tokens: the caller answers all of them alike. Throws when the
 * stored record does not parse, as for a failed read: that is an operator's problem,
 * never a valid token.
 */
export async function findToken(
  kv: KVNamespace,
  secret: string,
  now = Date.now(),
): Promise<TokenRecord | null> {
  const hash = await hashSecret(secret);
  const text = await kv.get(hashKey(hash), "text");
  if (text === null) return null;
  const record = parsedRecord(hash, text);
  if (record.expires_at && Date.parse(record.expires_at) <= now) return null;
  return record;
}

/**
 * The rules of an admin token: `tokens:admin` alone (it manages tokens and nothing else), for
 * servers only (no origins), expiring within {@link ADMIN_MAX_LIFETIME_MS}.
 */
function checkAdmin(r: { scopes: string[]; origins?: string[]; expires_at?: string }, now: Date): void {
  if (r.scopes.length > 1) throw new Error(`${ADMIN_SCOPE} must be the token's only scope`);
  if (r.origins) throw new Error(`a ${ADMIN_SCOPE} token is for servers: it takes no --origin`);
  const days = ADMIN_MAX_LIFETIME_MS / 86_400_000;
  if (!r.expires_at || Date.parse(r.expires_at) > now.getTime() + ADMIN_MAX_LIFETIME_MS) {
    throw new Error(`a ${ADMIN_SCOPE} token must expire, at most ${days} days ahead (--expires)`);
  }
}

/** Most records whose parse an isolate keeps; a token's calls reuse its entry. */
const PARSED_MAX = 256;
/** The last stored text read per token hash, with its checked, frozen record. */
const parsed = new Map<string, { text: string; record: Readonly<TokenRecord> }>();

/**
 * The stored text of a token's record, parsed and checked, reused while KV returns exactly the
 * same text for the same hash: every call of a token reads KV (revocation and edits are seen on
 * the next read), but only a changed record is parsed again. Throws for a corrupt record, which
 * is never kept.
 */
function parsedRecord(hash: string, text: string): Readonly<TokenRecord> {
  const kept = parsed.get(hash);
  if (kept?.text === text) return kept.record;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error("corrupt token record");
  }
  const result = tokenRecordSchema().safeParse(value);
  if (!result.success) throw new Error("corrupt token record");
  const record = result.data;
  for (const list of [record.scopes, record.domains, record.origins]) if (list) Object.freeze(list);
  Object.freeze(record);
  parsed.delete(hash);
  if (parsed.size >= PARSED_MAX) parsed.delete(parsed.keys().next().value as string);
  parsed.set(hash, { text, record });
  return record;
}

/** Checks the operator's input and builds a record; throws with a message the CLI prints. */
export function buildRecord(input: NewToken, now = new Date()): TokenRecord {
  const candidate = {
    v: 1,
    id: `tok_${randomHex(8)}`,
    name: input.name,
    scopes: [...new Set(input.scopes)],
    domains: input.domains?.length ? [...new Set(input.domains.map((d) => d.toLowerCase()))] : undefined,
    origins: input.origins?.length
      ? [...new Set(input.origins.map((o) => o.toLowerCase().replace(/\/+$/, "")))]
      : undefined,
    expires_at: input.expiresAt?.toISOString(),
    created_at: now.toISOString(),
  };
  if (input.expiresAt && input.expiresAt.getTime() < now.getTime() + 120_000) {
    throw new Error("the expiry (--expires, expires_at) must be at least two minutes in the future");
  }
  if (candidate.scopes.includes(ADMIN_SCOPE)) checkAdmin(candidate, now);
  const parsed = tokenRecordSchema().safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`invalid ${issue.path.join(".") || "token"}: ${issue.message}`);
  }
  return parsed.data;
}

/** The metadata of a `token-id:` key: what a listing shows without reading values. */
export interface TokenSummary {
  name: string;
  scopes: Scope[];
  expires_at?: string;
  revoked_at?: string;
  created_at: string;
}

const summary = (r: TokenIndexRecord): TokenSummary => ({
  name: r.name.slice(0, 100),
  scopes: r.scopes,
  expires_at: r.expires_at,
  revoked_at: r.revoked_at,
  created_at: r.created_at,
});

/** KV expiration (epoch s) of a `token:` record that stops working at `until` (ISO), if it does. */
const hashExpiration = (until: string | undefined): number | undefined =>
  until === undefined
    ? undefined
    : Math.max(Math.floor(Date.parse(until) / 1000) + 60, Math.ceil(Date.now() / 1000) + 61);

const putIndex = (kv: KvLike, index: TokenIndexRecord) =>
  kv.put(idKey(index.id), JSON.stringify(index), { metadata: summary(index) });

/**
 * Creates a token: stores its hash record and its id record. Returns the secret (shown once)
 * and record. `record` may be built beforehand (with {@link buildRecord}), so that its id can be
 * recorded in the audit trail before the token exists.
 */
export async function createToken(
  kv: KvLike,
  input: NewToken,
  record: TokenRecord = buildRecord(input),
): Promise<{ secret: string; record: TokenRecord }> {
  const secret = generateSecret();
  const hash = await hashSecret(secret);
  await putIndex(kv, { ...record, hash });
  await kv.put(hashKey(hash), JSON.stringify(record), { expiration: hashExpiration(record.expires_at) });
  return { secret, record };
}

/** Reads a token's id record (never the secret). */
export async function getTokenById(kv: KvLike, id: string): Promise<TokenIndexRecord | null> {
  const raw = await kv.get(idKey(id), "text");
  return raw === null ? null : (JSON.parse(raw) as TokenIndexRecord);
}

/** One listed token: its id, its summary and its status. */
export type ListedToken = TokenSummary & { id: string; status: TokenStatus };

/** One page of the `token-id:` keys from `cursor`: at most `limit` keys, KV's cursor for the next. */
export async function listTokenPage(
  kv: KvLike,
  { cursor, limit = 1000, now = Date.now() }: { cursor?: string; limit?: number; now?: number } = {},
): Promise<{ tokens: ListedToken[]; cursor: string | null }> {
  const page = await kv.list({ prefix: "token-id:", cursor, limit });
  const tokens = page.keys.map((key) => {
    const meta = key.metadata as TokenSummary;
    return { id: key.name.slice("token-id:".length), ...meta, status: statusOf(meta, now) };
  });
  return { tokens, cursor: page.list_complete ? null : (page.cursor ?? null) };
}

/** Lists all tokens' id records from key metadata, page by page. */
export async function listTokens(kv: KvLike): Promise<ListedToken[]> {
  const out: ListedToken[] = [];
  let cursor: string | undefined;
  do {
    const page = await listTokenPage(kv, { cursor });
    out.push(...page.tokens);
    cursor = page.cursor ?? undefined;
  } while (cursor);
  return out;
}

/**
 * Revokes by public id: deletes the hash records (current and, after a rotation, previous),
 * marks the id record. Idempotent. `wasRevoked` tells whether it already was.
 */
export async function revokeToken(
  kv: KvLike,
  id: string,
  now = new Date(),
): Promise<(TokenIndexRecord & { wasRevoked: boolean }) | null> {
  const index = await getTokenById(kv, id);
  if (!index) return null;
  await kv.delete(hashKey(index.hash));
  if (index.previous_hash) await kv.delete(hashKey(index.previous_hash));
  if (index.revoked_at) return { ...index, wasRevoked: true };
  const { previous_hash: _h, previous_expires_at: _e, ...rest } = index;
  const revoked: TokenIndexRecord = { ...rest, revoked_at: now.toISOString() };
  await putIndex(kv, revoked);
  return { ...revoked, wasRevoked: false };
}

/**
 * When a rotated-out secret stops working: `overlapS` from `now`, never after the token's own
 * expiry; undefined for no overlap (it stops at once).
 */
export function overlapEnd(r: { expires_at?: string }, overlapS: number, now: Date): string | undefined {
  if (overlapS <= 0) return undefined;
  const expires = r.expires_at ? Date.parse(r.expires_at) : Number.POSITIVE_INFINITY;
  return new Date(Math.min(now.getTime() + overlapS * 1000, expires)).toISOString();
}

/** Why a rotation did not happen. */
export type RotateRefusal = "not_found" | "inactive";

/**
 * Rotates by public id: a new secret for the same token (same id, scopes, domains, origins
 * and expiry). The old secret keeps working for `overlapS` seconds (0 to {@link MAX_OVERLAP_S},
 * never past the token's own expiry), then is refused; its `token:` record carries that end as
 * its `expires_at`. A secret rotated out earlier is deleted at once: one overlap at a time.
 */
export async function rotateToken(
  kv: KvLike,
  id: string,
  overlapS: number,
  now = new Date(),
): Promise<{ secret: string; index: TokenIndexRecord } | RotateRefusal> {
  if (!Number.isInteger(overlapS) || overlapS < 0 || overlapS > MAX_OVERLAP_S) {
    throw new Error(`the overlap must be 0 to ${MAX_OVERLAP_S} seconds`);
  }
  const index = await getTokenById(kv, id);
  if (!index) return "not_found";
  if (statusOf(index, now.getTime()) !== "active") return "inactive";
  const {
    hash: oldHash,
    previous_hash: olderHash,
    revoked_at: _r,
    rotated_at: _a,
    previous_expires_at: _e,
    ...record
  } = index;
  const tokenRecord: TokenRecord = record;
  const secret = generateSecret();
  const hash = await hashSecret(secret);
  const until = overlapEnd(record, overlapS, now);
  const next: TokenIndexRecord = {
    ...tokenRecord,
    hash,
    rotated_at: now.toISOString(),
    ...(until ? { previous_hash: oldHash, previous_expires_at: until } : {}),
  };
  // New secret first: a failure part-way leaves the old one working, never neither.
  await kv.put(hashKey(hash), JSON.stringify(tokenRecord), { expiration: hashExpiration(record.expires_at) });
  await putIndex(kv, next);
  if (until) {
    await kv.put(hashKey(oldHash), JSON.stringify({ ...tokenRecord, expires_at: until }), {
      expiration: hashExpiration(until),
    });
  } else {
    await kv.delete(hashKey(oldHash));
  }
  if (olderHash && olderHash !== oldHash) await kv.delete(hashKey(olderHash));
  return { secret, index: next };
}
