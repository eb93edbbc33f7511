/**
 * `npm run audit -- verify`: runs scripts/lib/verify-trail.ts (the same core the workerd tests run)
 * against local state (wrangler's KV under `.wrangler/state` or `--persist-to`, through
 * getPlatformProxy; no server needed) or a deployed Worker (`--url`/`--remote`: raw records from
 * `GET /audit/records` with an audit:read token). The signing keys come from the environment:
 * AUDIT_SIGNING_KEY (current) and AUDIT_VERIFY_KEYS (retired ones, comma-separated); locally,
 * when unset, from .dev.vars or the key `npm start` made for the state folder.
 * Exit 0: clean; 1: a problem found (or the trail could not be read); 2: usage error.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseArgs, parseEnv } from "node:util";
import { parseKeyRing, type SigningKey } from "../../src/model/mac.ts";
import { readLocalKey } from "./audit-key.ts";
import { parseDuration } from "./cli.ts";
import { openLocalKv, PROJECT_ROOT } from "./kv.ts";
import { kvSource, type TrailSource, type VerifyReport, verifyTrail } from "./verify-trail.ts";

export const VERIFY_USAGE = `Usage: npm run audit -- verify [--since TIME] [--until TIME] [--json]
                            [--persist-to DIR | --url URL | --remote] [--token-env VAR]

Checks every audit record's MAC, every hourly digest's MAC and chain, every digested hour's
records against its digest, and the index keys against their entries. Whole hours from the one
holding --since (default: everything) to the one holding --until (default: now).
  --since, --until  ISO 8601 date or date-time, or relative: 90m, 12h, 7d, 2w
  --json            the report as JSON (problems with kind, key, detail)
Source: local state (default; .wrangler/state or --persist-to DIR, as npm start used), or a
        deployed Worker: --url https://... or --remote ($VILLAGE_EDGE_URL), read with an
        audit:read token from $AUDIT_TOKEN (or the variable named by --token-env).
Keys:   $AUDIT_SIGNING_KEY and $AUDIT_VERIFY_KEYS (retired keys, comma-separated), each
        <key id>:<base64>; locally, if unset, .dev.vars or the key npm start made.
Exit:   0 clean, 1 problems found (or the trail could not be read), 2 usage error.`;

class UsageError extends Error {}

/** A duration ago (the CLIs' one syntax, scripts/lib/cli.ts `parseDuration`), or an ISO date/date-time. */
function timeArg(name: string, value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+[a-z]$/.test(value)) {
    try {
      return now - parseDuration(value);
    } catch (err) {
      throw new UsageError(`--${name}: ${(err as Error).message}`);
    }
  }
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new UsageError(`--${name}: not a time: ${value}`);
  return t;
}

function keyRing(local: boolean, persistTo: string | undefined): Map<string, SigningKey> {
  let current = process.env.AUDIT_SIGNING_KEY?.trim();
  if (!current && local) {
    const file = path.join(PROJECT_ROOT, ".dev.vars");
    const devVars = existsSync(file) ? parseEnv(readFileSync(file, "utf8")) : {};
    current = devVars.AUDIT_SIGNING_KEY?.trim() || readLocalKey(persistTo);
  }
  if (!current) {
    throw new UsageError(
      local
        ? "no signing key: set AUDIT_SIGNING_KEY, or run npm start once with this state folder"
        : "set AUDIT_SIGNING_KEY (and AUDIT_VERIFY_KEYS for retired keys) to verify a deployed trail",
    );
  }
  try {
    return parseKeyRing([current, process.env.AUDIT_VERIFY_KEYS ?? ""].join(","));
  } catch (err) {
    throw new UsageError(`a signing key ${(err as Error).message}`);
  }
}

/** A {@link TrailSource} over `GET /audit/records`: listed values are kept for the reads that follow. */
function httpSource(base: string, token: string): TrailSource {
  const cache = new Map<string, { value: string | null; metadata: unknown }>();
  const get = async (query: URLSearchParams) => {
    const res = await fetch(`${base}/audit/records?${query}`, {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
    });
    const body = (await res.json().catch(() => null)) as {
      records?: { key: string; value: string | null; metadata: unknown }[];
      cursor?: string | null;
      detail?: string;
    } | null;
    if (!res.ok || !body?.records) throw new Error(`GET /audit/records: ${res.status} ${body?.detail ?? ""}`);
    return { records: body.records, cursor: body.cursor ?? null };
  };
  return {
    async list(prefix, cursor) {
      const q = new URLSearchParams({ prefix });
      if (cursor) q.set("cursor", cursor);
      const page = await get(q);
      for (const r of page.records) cache.set(r.key, { value: r.value, metadata: r.metadata });
      return { keys: page.records.map((r) => ({ name: r.key, metadata: r.metadata })), cursor: page.cursor };
    },
    async read(names) {
      const out = new Map<string, { value: string | null; metadata: unknown }>();
      const missing: string[] = [];
      for (const name of names) {
        const hit = cache.get(name);
        if (hit) {
          out.set(name, hit);
          cache.delete(name);
        } else missing.push(name);
      }
      if (missing.length > 0) {
        const q = new URLSearchParams();
        for (const name of missing) q.append("key", name);
        for (const r of (await get(q)).records) out.set(r.key, { value: r.value, metadata: r.metadata });
      }
      return out;
    },
  };
}

function printReport(report: VerifyReport, seconds: number): void {
  const line = (s = ""): void => void process.stdout.write(`${s}\n`);
  line(`verify: ${report.since} .. ${report.until}`);
  line(
    `  ${report.entries} entries, ${report.outcomes} outcomes, ${report.indexes} index keys, ${report.digests} digests` +
      ` (${report.undigested} records in hours not yet digested: checked by MAC only)`,
  );
  line(`  head: ${report.head ? `${report.head.key} sha256 ${report.head.sha256}` : "no digest in range"}`);
  for (const p of report.problems) line(`  ${p.kind.toUpperCase().padEnd(12)} ${p.key}  ${p.detail}`);
  const rate = seconds > 0 ? Math.round(report.entries / seconds) : report.entries;
  line(`  ${seconds.toFixed(1)} s, ${rate} entries/s`);
  if (report.problems.length === 0) {
    line("verify: clean");
    return;
  }
  const counts = new Map<string, number>();
  for (const p of report.problems) counts.set(p.kind, (counts.get(p.kind) ?? 0) + 1);
  const list = [...counts].map(([k, n]) => `${n} ${k}`).join(", ");
  line(`verify: ${report.problems.length} problem${report.problems.length === 1 ? "" : "s"} (${list})`);
}

/** Runs `verify` with its arguments; resolves to the exit code. */
export async function runVerify(argv: string[]): Promise<number> {
  let flags: Record<string, string | boolean | undefined>;
  try {
    flags = parseArgs({
      args: argv,
      strict: true,
      options: {
        since: { type: "string" },
        until: { type: "string" },
        json: { type: "boolean" },
        "persist-to": { type: "string" },
        url: { type: "string" },
        remote: { type: "boolean" },
        "token-env": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    process.stderr.write(`audit verify: ${(err as Error).message}\n${VERIFY_USAGE}\n`);
    return 2;
  }
  if (flags.help) {
    process.stdout.write(`${VERIFY_USAGE}\n`);
    return 0;
  }
  let dispose = async () => {};
  try {
    const now = Date.now();
    const since = timeArg("since", flags.since as string | undefined, now);
    const until = timeArg("until", flags.until as string | undefined, now) ?? now;
    if (since !== undefined && since > until) throw new UsageError("--since is after --until");
    const remote = flags.url !== undefined || flags.remote === true;
    if (
      [flags.url !== undefined, flags.remote === true, flags["persist-to"] !== undefined].filter(Boolean)
        .length > 1
    ) {
      throw new UsageError("choose one of --persist-to, --url and --remote");
    }
    const persistTo = flags["persist-to"] as string | undefined;
    const ring = keyRing(!remote, persistTo);
    let source: TrailSource;
    if (remote) {
      const base = String(flags.url ?? process.env.VILLAGE_EDGE_URL ?? "").replace(/\/+$/, "");
      if (!base)
        throw new UsageError("--remote needs VILLAGE_EDGE_URL (the deployed Worker's URL), or use --url");
      const tokenEnv = (flags["token-env"] as string | undefined) ?? "AUDIT_TOKEN";
      const token = process.env[tokenEnv];
      if (!token) throw new UsageError(`set ${tokenEnv} to an audit:read token`);
      source = httpSource(base, token);
    } else {
      const opened = await openLocalKv("AUDIT", persistTo);
      dispose = opened.dispose;
      source = kvSource(opened.kv as unknown as KVNamespace);
    }
    let lastReport = 0;
    const started = performance.now();
    const report = await verifyTrail(source, ring, {
      since,
      until,
      onProgress: (stage, done) => {
        if (performance.now() - lastReport < 2000) return;
        lastReport = performance.now();
        process.stderr.write(`audit verify: ${stage}: ${done}\n`);
      },
    });
    const seconds = (performance.now() - started) / 1000;
    if (flags.json) process.stdout.write(`${JSON.stringify({ ...report, seconds }, null, 2)}\n`);
    else printReport(report, seconds);
    return report.problems.length === 0 ? 0 : 1;
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`audit verify: ${err.message}\n`);
      return 2;
    }
    process.stderr.write(`audit verify: could not read the trail: ${(err as Error).message}\n`);
    return 1;
  } finally {
    await dispose();
  }
}
