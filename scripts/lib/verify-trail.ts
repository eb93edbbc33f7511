/**
 * The core of `npm run audit -- verify`, pure over a {@link TrailSource} so the workerd tests run
 * exactly what the CLI runs (locally over wrangler's KV, remotely over `GET /audit/records`).
 * It checks every record's MAC, every digest's MAC and the chain, every digested hour's records
 * against its digest, and the index keys against their entries, and names each problem's key.
 * What it proves and what it cannot: docs/audit.md ("Proving the trail").
 */

import {
  DIGESTED_KINDS,
  type Digest,
  type DigestProgress,
  digestKeys,
  GENESIS,
  HOUR_MS,
  hourLabel,
  hourOf,
  hourOfKey,
} from "../../src/audit/digest.ts";
import { queryPrefix } from "../../src/audit/query.ts";
import { type AuditEntry, auditKeys, auditMeta } from "../../src/audit/store.ts";
import { checkMac, type SigningKey, sha256Hex } from "../../src/model/mac.ts";

/** Read access to the AUDIT namespace: KV itself, or the review API's raw records. */
export interface TrailSource {
  /** One page of keys under `prefix` in key order, with their metadata; `cursor` null at the end. */
  list(
    prefix: string,
    cursor: string | null,
  ): Promise<{ keys: { name: string; metadata?: unknown }[]; cursor: string | null }>;
  /** Values and metadata of at most 100 keys; an absent key is missing from the map or has a null value. */
  read(names: string[]): Promise<Map<string, { value: string | null; metadata: unknown }>>;
}

/** A {@link TrailSource} over a KV binding (workerd, or wrangler's getPlatformProxy in Node). */
export function kvSource(kv: KVNamespace): TrailSource {
  return {
    async list(prefix, cursor) {
      const page = await kv.list({ prefix, cursor: cursor ?? undefined });
      return { keys: page.keys, cursor: page.list_complete ? null : page.cursor };
    },
    async read(names) {
      const found = await kv.getWithMetadata<unknown>(names, "text");
      return new Map(
        [...found].map(([k, v]) => [k, { value: v?.value ?? null, metadata: v?.metadata ?? null }]),
      );
    },
  };
}

export type ProblemKind = "altered" | "missing" | "unexpected" | "late" | "unsigned" | "broken_chain";

export interface TrailProblem {
  kind: ProblemKind;
  key: string;
  detail: string;
}

export interface VerifyOptions {
  /** Epoch ms; whole hours from the one holding `since` to the one holding `until` are checked. */
  since?: number;
  until?: number;
  /** Called now and then with what has been done so far. */
  onProgress?: (stage: string, done: number) => void;
}

export interface VerifyReport {
  since: string;
  until: string;
  entries: number;
  outcomes: number;
  indexes: number;
  digests: number;
  /** Records in hours no digest covers yet (checked by MAC only). */
  undigested: number;
  problems: TrailProblem[];
  /** The newest digest checked and the SHA-256 of its value: record it elsewhere to anchor the chain. */
  head: { key: string; sha256: string } | null;
}

const READ_BATCH = 100;
/** Bulk reads in flight at once: the reads are independent, and most of their time is waiting. */
const READS_IN_FLIGHT = 6;

interface Listed {
  name: string;
  meta: Record<string, unknown> | null;
}

async function listAll(
  source: TrailSource,
  prefix: string,
  keep: (name: string) => boolean,
): Promise<Listed[]> {
  const out: Listed[] = [];
  let cursor: string | null = null;
  do {
    const page = await source.list(prefix, cursor);
    for (const k of page.keys) {
      if (keep(k.name))
        out.push({ name: k.name, meta: (k.metadata as Record<string, unknown> | null) ?? null });
    }
    cursor = page.cursor;
  } while (cursor !== null);
  return out;
}

async function readAll(
  source: TrailSource,
  names: string[],
  onBatch?: (done: number) => void,
): Promise<Map<string, { value: string | null; metadata: unknown }>> {
  const out = new Map<string, { value: string | null; metadata: unknown }>();
  const step = READ_BATCH * READS_IN_FLIGHT;
  for (let i = 0; i < names.length; i += step) {
    const batches: Promise<Map<string, { value: string | null; metadata: unknown }>>[] = [];
    for (let j = i; j < Math.min(i + step, names.length); j += READ_BATCH) {
      batches.push(source.read(names.slice(j, j + READ_BATCH)));
    }
    for (const found of await Promise.all(batches)) for (const [k, v] of found) out.set(k, v);
    onBatch?.(Math.min(i + step, names.length));
  }
  return out;
}

type MacStatus = "ok" | "bad" | "unknown-key" | "unsigned";

/** Checks one record's MAC (held in its metadata) against its key name, metadata and value. */
async function macStatus(
  ring: ReadonlyMap<string, SigningKey>,
  name: string,
  metadata: unknown,
  value: string,
): Promise<{ status: MacStatus; mac?: string }> {
  const meta = (metadata ?? {}) as Record<string, unknown>;
  const { mac, ...rest } = meta;
  if (typeof mac !== "string") return { status: "unsigned" };
  const metaJson = Object.keys(rest).length > 0 ? JSON.stringify(rest) : "";
  return { status: await checkMac(ring, mac, name, metaJson, value), mac };
}

/** Why an entry's MAC fails: its metadata no longer matches its value, or the value/key changed. */
function entryDetail(meta: unknown, value: string): string {
  try {
    const { mac: _mac, ...rest } = (meta ?? {}) as Record<string, unknown>;
    const expected = JSON.stringify(auditMeta(JSON.parse(value) as AuditEntry));
    if (expected !== JSON.stringify(rest)) return "its metadata does not match its value";
  } catch {
    return "its value is not an entry";
  }
  return "its value does not match its MAC (edited, or moved from another key)";
}

const macProblem = (status: MacStatus): string =>
  status === "unknown-key" ? "signed with a key id the verification keys do not hold" : "";

/**
 * Verifies the trail between `since` and `until` (whole hours). Pure over `source`: reads only.
 * `ring` holds every key id that may have signed (current and retired keys).
 */
export async function verifyTrail(
  source: TrailSource,
  ring: ReadonlyMap<string, SigningKey>,
  opts: VerifyOptions = {},
): Promise<VerifyReport> {
  const first = hourOf(opts.since ?? 0);
  const last = hourOf(opts.until ?? Date.now());
  const inRange = (hour: number | undefined) => hour !== undefined && hour >= first && hour <= last;
  const problems: TrailProblem[] = [];
  const problem = (kind: ProblemKind, key: string, detail: string) => problems.push({ kind, key, detail });
  const progress = opts.onProgress ?? (() => {});

  // Digests: every one in range, the one before it (the chain's link into the range), the oldest.
  const digestNames = (await listAll(source, "digest:", () => true)).map((k) => k.name);
  const labelOf = (name: string) => name.slice("digest:".length);
  const wanted = digestNames.filter((n) => labelOf(n) <= hourLabel(last));
  const before = wanted.filter((n) => labelOf(n) < hourLabel(first)).at(-1);
  const chainNames = wanted.filter((n) => labelOf(n) >= hourLabel(first) || n === before || n === wanted[0]);
  const digestValues = await readAll(source, [...chainNames, digestKeys.progress]);
  const digests = new Map<number, { name: string; digest: Digest | null; hash: string }>();
  for (const name of chainNames) {
    const got = digestValues.get(name);
    if (!got || got.value === null) continue;
    const { status } = await macStatus(ring, name, got.metadata, got.value);
    let digest: Digest | null = null;
    try {
      digest = JSON.parse(got.value) as Digest;
    } catch {
      digest = null;
    }
    const hour = Date.parse(`${labelOf(name)}:00:00.000Z`);
    if (status === "unsigned") problem("unsigned", name, "digest without a MAC");
    else if (status !== "ok")
      problem("altered", name, macProblem(status) || "the digest does not match its MAC");
    const valid = status === "ok" && digest !== null && digest.hour === new Date(hour).toISOString();
    digests.set(hour, { name, digest: valid ? digest : null, hash: await sha256Hex(got.value) });
  }
  const hours = [...digests.keys()].sort((a, b) => a - b);
  for (let i = 1; i < hours.length; i++) {
    const prev = digests.get(hours[i - 1]);
    const cur = digests.get(hours[i]);
    if (!prev || !cur || (hours[i - 1] < first - HOUR_MS && hours[i] < first)) continue;
    if (cur.digest && cur.digest.prev !== prev.hash) {
      problem("broken_chain", cur.name, `its prev does not match ${prev.name}`);
    }
  }
  const newest = hours.filter((h) => h >= first).at(-1);
  const head = newest === undefined ? undefined : digests.get(newest);
  const nextHour = (() => {
    const raw = digestValues.get(digestKeys.progress)?.value;
    try {
      return raw ? (JSON.parse(raw) as DigestProgress).hour : undefined;
    } catch {
      return undefined;
    }
  })();
  // From the chain's first digest on, every hour the digester has passed must have a digest.
  const chainStart = hours[0];
  if (chainStart !== undefined) {
    const end = Math.min(last, (nextHour ?? (hours.at(-1) as number) + HOUR_MS) - HOUR_MS);
    for (let h = Math.max(first, chainStart); h <= end; h += HOUR_MS) {
      if (!digests.has(h))
        problem("missing", digestKeys.digest(h), "no digest for an hour the digester has passed");
    }
  }
  progress("digests", digests.size);
  progress("digests", digests.size);

  // What each digest says its hour held: key name -> MAC ("-" when unsigned).
  const expected = new Map<number, Map<string, string>>();
  for (const hour of hours) {
    const d = digests.get(hour);
    if (!d?.digest || hour < first) continue;
    const partNames = d.digest.parts.map((_, i) => digestKeys.part(hour, i));
    const parts = await readAll(source, partNames);
    const lines = new Map<string, string>();
    let whole = true;
    for (const [i, partName] of partNames.entries()) {
      const got = parts.get(partName);
      if (!got || got.value === null) {
        problem("missing", partName, `a part of ${d.name}`);
        whole = false;
        continue;
      }
      const { status } = await macStatus(ring, partName, got.metadata, got.value);
      if (status !== "ok" || (await sha256Hex(got.value)) !== d.digest.parts[i]) {
        problem("altered", partName, `does not match ${d.name}`);
        whole = false;
        continue;
      }
      for (const line of got.value.split("\n")) {
        const space = line.lastIndexOf(" ");
        if (space > 0) lines.set(line.slice(0, space), line.slice(space + 1));
      }
    }
    // With a part missing or altered, the hour's records are checked by MAC only.
    if (whole) expected.set(hour, lines);
  }

  // Records: entries and outcomes of the range, each MAC checked, then compared with its digest.
  const bounds = { since: first, until: last + HOUR_MS - 1 };
  const records: Listed[] = [];
  for (const kind of DIGESTED_KINDS) {
    const prefix = queryPrefix(bounds).replace(/^entry:/, kind);
    records.push(...(await listAll(source, prefix, (n) => inRange(hourOfKey(n)))));
    progress(`listed ${kind}`, records.length);
  }
  const values = await readAll(
    source,
    records.map((r) => r.name),
    (n) => progress("records", n),
  );
  const report: VerifyReport = {
    since: new Date(first).toISOString(),
    until: new Date(last + HOUR_MS - 1).toISOString(),
    entries: 0,
    outcomes: 0,
    indexes: 0,
    digests: [...digests.keys()].filter((h) => h >= first).length,
    undigested: 0,
    problems,
    head: head ? { key: head.name, sha256: head.hash } : null,
  };
  const entries = new Map<string, Record<string, unknown>>();
  const seen = new Set<string>();
  for (const { name } of records) {
    const got = values.get(name);
    if (!got || got.value === null) continue; // expired or deleted since the listing
    seen.add(name);
    const isEntry = name.startsWith(DIGESTED_KINDS[0]);
    if (isEntry) report.entries++;
    else report.outcomes++;
    const { status, mac } = await macStatus(ring, name, got.metadata, got.value);
    const hour = hourOfKey(name) as number;
    const digested = expected.get(hour);
    if (!digested) report.undigested++;
    const listed = digested?.get(name);
    const why = () =>
      macProblem(status) ||
      (isEntry ? entryDetail(got.metadata, got.value as string) : "its value does not match its MAC");
    if (status === "unsigned") {
      if (listed !== undefined && listed !== "-")
        problem("altered", name, `its MAC is gone, ${digestKeys.digest(hour)} lists one`);
      else
        problem(digested && listed === undefined ? "unexpected" : "unsigned", name, "written without a MAC");
    } else if (status !== "ok") {
      if (digested && listed === undefined)
        problem("unexpected", name, `not in ${digestKeys.digest(hour)} and ${why()}`);
      else problem("altered", name, why());
    } else if (digested && listed === undefined) {
      problem("late", name, `valid MAC, written after ${digestKeys.digest(hour)} was made`);
    } else if (digested && listed !== mac) {
      problem("altered", name, `not the record ${digestKeys.digest(hour)} lists`);
    }
    if (isEntry && status === "ok")
      entries.set(name.slice(DIGESTED_KINDS[0].length), got.metadata as Record<string, unknown>);
  }
  const oldest = chainStart === undefined ? undefined : digests.get(chainStart);
  if (
    oldest?.digest &&
    oldest.digest.prev !== GENESIS &&
    records.some((r) => (hourOfKey(r.name) as number) < chainStart)
  ) {
    // Its predecessor is gone while records older than it are not: they expire together.
    problem("missing", digestKeys.digest(chainStart - HOUR_MS), `the digest ${oldest.name} chains to`);
    problem("broken_chain", oldest.name, "its previous digest is gone while older records remain");
  }
  for (const [hour, lines] of expected) {
    for (const name of lines.keys()) {
      if (!seen.has(name)) problem("missing", name, `listed in ${digestKeys.digest(hour)}`);
    }
  }
  for (const { name } of records) {
    const id = name.slice(name.indexOf(":") + 1);
    const entryKey = auditKeys.entry(id);
    if (name.startsWith(DIGESTED_KINDS[1]) && seen.has(name) && !seen.has(entryKey)) {
      const reported = problems.some((p) => p.key === entryKey);
      if (!reported) problem("missing", entryKey, `its outcome ${name} exists`);
    }
  }

  // Index keys: each must carry its entry's metadata (MAC included), and each entry its index keys.
  const indexes = new Set<string>();
  for (const prefix of ["by-token:", "by-email:"]) {
    for (const key of await listAll(source, prefix, (n) => inRange(hourOfKey(n.slice(n.lastIndexOf(":")))))) {
      const id = key.name.slice(key.name.lastIndexOf(":") + 1);
      indexes.add(key.name);
      report.indexes++;
      const entryMeta = entries.get(id);
      if (!entryMeta) {
        const entryKey = auditKeys.entry(id);
        if (!seen.has(entryKey) && !problems.some((p) => p.key === entryKey)) {
          problem("unexpected", key.name, "an index key without its entry");
        }
        continue;
      }
      if (JSON.stringify(key.meta) !== JSON.stringify(entryMeta)) {
        problem("altered", key.name, `its metadata differs from ${auditKeys.entry(id)}`);
      }
    }
    progress(`indexes ${prefix}`, indexes.size);
  }
  for (const [id, meta] of entries) {
    const wantedKeys = [auditKeys.byToken(String(meta.token_id), id)];
    if (typeof meta.email === "string") wantedKeys.push(auditKeys.byEmail(meta.email, id));
    for (const k of wantedKeys)
      if (!indexes.has(k)) problem("missing", k, `the index key of ${auditKeys.entry(id)}`);
  }
  return report;
}
