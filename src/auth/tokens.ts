/**
 * Opaque API tokens: format, hashing and the TOKENS KV records.
 * Runs both in the Worker and in the operators' CLI (Node), so it uses only Web APIs.
 * Key layout: docs/storage.md.
 */
import * as z from "zod/mini";
import { FIELDS } from "../model/fields.ts";

/** Every token starts with this, so secret scanners can find leaked ones. */
export const TOKEN_PREFIX = "vge_";
/** `vge_` + 64 hex (256 random bits) + 8 hex CRC-32 checksum. */
export const TOKEN_PATTERN = /^vge_[0-9a-f]{64}[0-9a-f]{8}$/;
export const TOKEN_LENGTH = TOKEN_PREFIX.length + 72;

/** Scopes a token may hold. */
export const SCOPES = [
  "users:write",
  ...FIELDS.map((f) => `users:write:${f}` as const),
  "audit:read",
] as const;
export type Scope = (typeof SCOPES)[number];

const hashKey = (hash: string) => `token:${hash}`;
const idKey = (id: string) => `token-id:${id}`;

const DOMAIN = /^(\*\.)?(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/;
const ORIGIN = /^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/;

/** The record stored under `token:<sha256>`; also what the CLI shows (with `hash`, never the secret). */
export const TokenRecord = z.object({
  v: z.literal(1),
  id: z.string().check(z.regex(/^tok_[0-9a-f]{16}$/)),
  name: z.string().check(z.minLength(1), z.maxLength(100)),
  scopes: z.array(z.enum(SCOPES)).check(z.minLength(1)),
  domains: z.optional(z.array(z.string().check(z.regex(DOMAIN)))),
  origins: z.optional(z.array(z.string().check(z.regex(ORIGIN)))),
  expires_at: z.optional(z.iso.datetime()),
  created_at: z.iso.datetime(),
});
export type TokenRecord = z.infer<typeof TokenRecord>;

/** The record under `token-id:<id>`: the token record plus its hash and revocation time. */
export type TokenIndexRecord = TokenRecord & { hash: string; revoked_at?: string };

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
  list(options: { prefix: string; cursor?: string }): Promise<{
    keys: { name: string; metadata?: unknown }[];
    list_complete: boolean;
    cursor?: string;
  }>;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32Hex(text: string): string {
  let crc = 0xffffffff;
  for (let i = 0; i < text.length; i++) {
    crc = CRC_TABLE[(crc ^ text.charCodeAt(i)) & 0xff] ^ (crc >>> 8);
  }
  return ((crc ^ 0xffffffff) >>> 0).toString(16).padStart(8, "0");
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));
const encoder = new TextEncoder();

export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]];
  return out;
}

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
  const raw = await kv.get(hashKey(await hashSecret(secret)), "json");
  if (raw === null) return null;
  const parsed = TokenRecord.safeParse(raw);
  if (!parsed.success) throw new Error("corrupt token record");
  const record = parsed.data;
  if (record.expires_at && Date.parse(record.expires_at) <= now) return null;
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
    throw new Error("--expires must be at least two minutes in the future");
  }
  const parsed = TokenRecord.safeParse(candidate);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`invalid ${issue.path.join(".") || "token"}: ${issue.message}`);
  }
  return parsed.data;
}

const summary = (r: TokenIndexRecord) => ({
  name: r.name.slice(0, 100),
  scopes: r.scopes,
  expires_at: r.expires_at,
  revoked_at: r.revoked_at,
  created_at: r.created_at,
});

/** Creates a token: stores its hash record and its id record. Returns the secret (shown once) and record. */
export async function createToken(
  kv: KvLike,
  input: NewToken,
): Promise<{ secret: string; record: TokenRecord }> {
  const record = buildRecord(input);
  const secret = generateSecret();
  const hash = await hashSecret(secret);
  const expiration = record.expires_at ? Math.floor(Date.parse(record.expires_at) / 1000) + 60 : undefined;
  const index: TokenIndexRecord = { ...record, hash };
  await kv.put(idKey(record.id), JSON.stringify(index), { metadata: summary(index) });
  await kv.put(hashKey(hash), JSON.stringify(record), { expiration });
  return { secret, record };
}

/** Reads a token's id record (never the secret). */
export async function getTokenById(kv: KvLike, id: string): Promise<TokenIndexRecord | null> {
  const raw = await kv.get(idKey(id), "text");
  return raw === null ? null : (JSON.parse(raw) as TokenIndexRecord);
}

/** Lists all tokens' id records from key metadata, page by page. */
export async function listTokens(kv: KvLike): Promise<(ReturnType<typeof summary> & { id: string })[]> {
  const out: (ReturnType<typeof summary> & { id: string })[] = [];
  let cursor: string | undefined;
  do {
    const page = await kv.list({ prefix: "token-id:", cursor });
    for (const key of page.keys) {
      out.push({ id: key.name.slice("token-id:".length), ...(key.metadata as ReturnType<typeof summary>) });
    }
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return out;
}

/** Revokes by public id: deletes the hash record, marks the id record. Idempotent. */
export async function revokeToken(
  kv: KvLike,
  id: string,
  now = new Date(),
): Promise<TokenIndexRecord | null> {
  const index = await getTokenById(kv, id);
  if (!index) return null;
  await kv.delete(hashKey(index.hash));
  if (!index.revoked_at) {
    const revoked = { ...index, revoked_at: now.toISOString() };
    await kv.put(idKey(id), JSON.stringify(revoked), { metadata: summary(revoked) });
    return revoked;
  }
  return index;
}
