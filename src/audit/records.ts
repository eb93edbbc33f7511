/**
 * Raw audit records for `npm run audit -- verify --url ...`: key names, values and metadata
 * (MACs included) exactly as stored, so a verifier holding the signing keys can check them
 * without Cloudflare credentials (which could also write to the namespace). The Worker checks
 * nothing here: verification happens where the keys are.
 */
import { ProblemError } from "../http/errors.ts";

/** One stored record. */
export interface RawRecord {
  key: string;
  value: string | null;
  metadata: unknown;
}

export interface RawPage {
  records: RawRecord[];
  /** KV's cursor for the next page of the same prefix; null at the end (and for `key` reads). */
  cursor: string | null;
}

/** Keys per page of a prefix (one `list()`), and keys per `key` read (one bulk read). */
const LIST_MAX = 1000;
export const READ_MAX = 100;
const KEY_MAX = 512;

const invalid = (field: string, detail: string) =>
  new ProblemError("invalid-request", "The records query is not valid.", {
    errors: [{ field, pointer: "", detail }],
  });

/**
 * Reads one page: `prefix` (with `cursor`) lists up to 1000 keys and reads their values in
 * bulk (at most 11 KV operations); `keys` reads up to 100 named keys (one operation).
 */
export async function readRecords(
  kv: KVNamespace,
  q: { prefix?: string; cursor?: string; keys: string[] },
): Promise<RawPage> {
  if ((q.prefix === undefined) === (q.keys.length === 0)) {
    throw invalid("prefix", "Give either prefix (and cursor) or key (1 to 100 times).");
  }
  if (q.keys.length > READ_MAX) throw invalid("key", `At most ${READ_MAX} keys per request.`);
  if ([q.prefix ?? "", ...q.keys].some((k) => k.length > KEY_MAX))
    throw invalid("key", "A key is at most 512 bytes.");
  if (q.cursor !== undefined && (q.prefix === undefined || q.cursor.length > 2048)) {
    throw invalid("cursor", "A cursor goes with the prefix it came from.");
  }
  if (q.prefix === undefined) {
    const found = await kv.getWithMetadata<unknown>(q.keys, "text");
    return {
      records: q.keys.map((key) => ({
        key,
        value: found.get(key)?.value ?? null,
        metadata: found.get(key)?.metadata ?? null,
      })),
      cursor: null,
    };
  }
  const page = await kv.list({ prefix: q.prefix, cursor: q.cursor, limit: LIST_MAX });
  const names = page.keys.map((k) => k.name);
  const values = new Map<string, string | null>();
  for (let i = 0; i < names.length; i += READ_MAX) {
    for (const [k, v] of await kv.get(names.slice(i, i + READ_MAX), "text")) values.set(k, v);
  }
  return {
    records: page.keys.map((k) => ({
      key: k.name,
      value: values.get(k.name) ?? null,
      metadata: k.metadata ?? null,
    })),
    cursor: page.list_complete ? null : page.cursor,
  };
}
