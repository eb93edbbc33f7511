/**
 * Reviewers' CLI: lists and filters the audit trail through the Worker's review API
 * (`GET /audit`, `GET /audit/:id`) with an `audit:read` token, as a table or as JSON.
 * Run: `npm run audit -- --help`. The token comes from an environment variable, never from a
 * flag, so it stays out of shell history. Uses node: built-ins only, except `verify`
 * (scripts/lib/audit-verify.ts), loaded only for that command.
 */
import { parseArgs } from "node:util";
import { DURATION_SYNTAX, EXIT, parseDuration } from "./lib/cli.ts";
import { printable, printableJson } from "./lib/printable.ts";
import { findServer, NO_SERVER } from "./lib/server.ts";

const USAGE = `Usage: npm run audit -- [filters] [--json] [--local | --remote | --url URL] [--token-env VAR]
       npm run audit -- verify [--since 7d] [--until TIME] [--json] ...  (see: npm run audit -- verify --help)

Filters (all optional, combined with AND):
  --email ADDRESS        target user (case-insensitive)
  --token TOKEN_ID       the token's public id (tok_...), not its secret: what it did, and its
                         lifecycle (token.create, token.rotate, token.revoke) with who acted
  --outcome OUTCOME      pending, unknown, accepted, not_found, rejected_by_village,
                         upstream_error, timeout, denied, invalid, rate_limited
  --request-id ID        the X-Request-Id of a request
  --since TIME           ISO 8601 date or date-time, or a duration ago: ${DURATION_SYNTAX}
  --until TIME           same forms; defaults to now when --since is given
  --limit N              entries to show (default 50), newest first
  --id AUDIT_ID          show one entry in full, with its outcome

Output: a table, or with --json a JSON array (one object with --id).
Target: --url URL, else $VILLAGE_EDGE_URL, else the running \`npm start\` (any --port; it
        leaves its URL in .wrangler/dev-server.json). --local: only that npm start;
        --remote: only $VILLAGE_EDGE_URL (the deployed Worker's URL).
Token:  an audit:read token in $AUDIT_TOKEN, or in the variable named by --token-env.
        Create one with: npm run token -- create --name reviewer --scope audit:read
Exit codes: 0 done, 1 failed (refused, unreachable, not found), 2 usage error.`;
/** Pages followed at most; each holds up to 1000 entries. */
const MAX_PAGES = 1000;

interface Summary {
  id: string;
  time: string;
  request_id: string;
  token_id: string;
  token_name: string;
  email?: string;
  fields: string[];
  outcome: string;
  reason?: string;
  over_budget?: boolean;
  upstream_status?: number;
  latency_ms?: number;
  /** Token lifecycle entries: the action and the token acted on. */
  event?: string;
  target_id?: string;
}

/** A failure: exit 1. */
class CliError extends Error {}
/** A bad command line: exit 2. */
class UsageError extends CliError {}

/** A duration ago (`90m`, `12h`, `7d`), or an ISO date/date-time passed through. */
function toIso(value: string, now = Date.now()): string {
  if (/^\d+[a-z]$/.test(value)) {
    try {
      return new Date(now - parseDuration(value)).toISOString();
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(Date.parse(value))) {
    throw new UsageError(
      `"${value}" is neither an ISO date (2026-11-01) nor a duration (${DURATION_SYNTAX})`,
    );
  }
  return value;
}

function baseUrl(flags: { local?: boolean; remote?: boolean; url?: string }): string {
  if ([flags.local, flags.remote, flags.url !== undefined].filter(Boolean).length > 1) {
    throw new UsageError("choose one of --local, --remote and --url");
  }
  if (flags.remote) {
    const url = process.env.VILLAGE_EDGE_URL?.trim();
    if (!url)
      throw new UsageError("--remote needs VILLAGE_EDGE_URL (the deployed Worker's URL), or use --url");
    return url.replace(/\/+$/, "");
  }
  if (flags.local) {
    const saved = process.env.VILLAGE_EDGE_URL;
    delete process.env.VILLAGE_EDGE_URL;
    const found = findServer();
    if (saved !== undefined) process.env.VILLAGE_EDGE_URL = saved;
    if (!found) throw new CliError("--local: no running `npm start` found (.wrangler/dev-server.json)");
    return found.url;
  }
  const found = findServer(flags.url);
  if (!found) throw new CliError(NO_SERVER);
  return found.url;
}

async function getJson(url: string, token: string): Promise<{ body: unknown; next: string | null }> {
  let res: Response;
  try {
    res = await fetch(url, { headers: { Authorization: `Bearer ${token}`, Accept: "application/json" } });
  } catch (err) {
    throw new CliError(
      `cannot reach ${new URL(url).origin} (${(err as Error).message}); is the Worker running?`,
    );
  }
  const body = (await res.json().catch(() => null)) as Record<string, unknown> | null;
  if (!res.ok) {
    const errors = Array.isArray(body?.errors)
      ? (body.errors as { field: string; detail: string }[]).map(
          (e) => `\n  ${e.field || "query"}: ${e.detail}`,
        )
      : [];
    throw new CliError(
      printable(`${res.status} ${String(body?.detail ?? res.statusText)}${errors.join("")}`),
    );
  }
  return { body, next: (body?.cursor as string | null | undefined) ?? null };
}

function table(entries: Summary[]): string {
  const detail = (e: Summary) =>
    (e.event ? [e.event, e.target_id, e.reason].filter(Boolean).join(" ") : undefined) ??
    (e.reason && (e.over_budget ? `${e.reason} (over budget: later refusals in logs only)` : e.reason)) ??
    [e.upstream_status && `HTTP ${e.upstream_status}`, e.latency_ms !== undefined && `${e.latency_ms} ms`]
      .filter(Boolean)
      .join(", ");
  const rows = entries.map((e) => [
    e.time.replace(/\.\d{3}Z$/, "Z"),
    e.outcome,
    detail(e),
    e.email ?? "-",
    e.fields.join(",") || "-",
    `${e.token_name} (${e.token_id})`,
    e.id,
  ]);
  const head = ["TIME", "OUTCOME", "DETAIL", "EMAIL", "FIELDS", "TOKEN", "AUDIT ID"];
  const safe = rows.map((r) => r.map(printable));
  const widths = head.map((h, i) => Math.max(h.length, ...safe.map((r) => r[i].length)));
  return [head, ...safe]
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i]))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

async function main(argv: string[]): Promise<void> {
  let parsed: ReturnType<typeof parseFlags>;
  try {
    parsed = parseFlags(argv);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  await run(parsed.values);
}

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    strict: true,
    options: {
      email: { type: "string" },
      token: { type: "string" },
      outcome: { type: "string" },
      "request-id": { type: "string" },
      since: { type: "string" },
      until: { type: "string" },
      limit: { type: "string" },
      id: { type: "string" },
      json: { type: "boolean" },
      local: { type: "boolean" },
      remote: { type: "boolean" },
      url: { type: "string" },
      "token-env": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}

async function run(flags: ReturnType<typeof parseFlags>["values"]): Promise<void> {
  if (flags.help) return void console.log(USAGE);
  const base = baseUrl(flags);
  const tokenEnv = flags["token-env"] ?? "AUDIT_TOKEN";
  const token = process.env[tokenEnv];
  if (!token) throw new UsageError(`set ${tokenEnv} to an audit:read token (see --help)`);

  if (flags.id) {
    const { body } = await getJson(`${base}/audit/${encodeURIComponent(flags.id)}`, token);
    console.log(
      flags.json
        ? printableJson(body)
        : Object.entries(body as object)
            .map(([k, v]) =>
              printable(`${k.padEnd(16)}${typeof v === "object" ? JSON.stringify(v) : String(v)}`),
            )
            .join("\n"),
    );
    return;
  }

  const wanted = flags.limit === undefined ? 50 : Number(flags.limit);
  if (!Number.isInteger(wanted) || wanted < 1)
    throw new UsageError("--limit must be a positive whole number");
  const query = new URLSearchParams();
  if (flags.email) query.set("email", flags.email);
  if (flags.token) query.set("token", flags.token);
  if (flags.outcome) query.set("outcome", flags.outcome);
  if (flags["request-id"]) query.set("request_id", flags["request-id"]);
  if (flags.since) query.set("since", toIso(flags.since));
  // The query must not change between pages, so "until now" is pinned once, here.
  if (flags.until || flags.since)
    query.set("until", flags.until ? toIso(flags.until) : new Date().toISOString());

  const entries: Summary[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < MAX_PAGES && entries.length < wanted; page++) {
    query.set("limit", String(Math.min(1000, wanted - entries.length)));
    if (cursor) query.set("cursor", cursor);
    const { body, next } = await getJson(`${base}/audit?${query}`, token);
    entries.push(...((body as { entries: Summary[] }).entries ?? []));
    cursor = next;
    if (!cursor) break;
  }
  if (flags.json) return void console.log(printableJson(entries));
  console.log(entries.length ? table(entries) : "no matching entries");
  if (cursor) console.log(`(more entries exist: raise --limit to see them)`);
}

if (process.argv[2] === "verify") {
  const { runVerify } = await import("./lib/audit-verify.ts");
  process.exit(await runVerify(process.argv.slice(3)));
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  if (!(err instanceof CliError) && !(err instanceof TypeError && "code" in err)) throw err;
  console.error(`audit: ${err.message}${err instanceof UsageError ? "\nTry --help." : ""}`);
  process.exitCode = err instanceof UsageError ? EXIT.usage : EXIT.failed;
}
