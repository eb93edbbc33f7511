/**
 * Operators' token CLI: `npm run token -- create|list|show|revoke [flags]` (`--help` for usage).
 * All token logic lives in src/auth/tokens.ts; this file parses flags, picks the KV store and prints.
 * Exit codes: 0 done, 1 not found or failed, 2 usage error.
 */
import path from "node:path";
import { parseArgs } from "node:util";
import {
  createToken,
  getTokenById,
  type KvLike,
  listTokens,
  type NewToken,
  revokeToken,
  SCOPES,
  type TokenIndexRecord,
} from "../src/auth/tokens.ts";
import { DURATION_SYNTAX, EXIT, isMain } from "./lib/cli.ts";
import { checkRemoteBinding, openLocalKv, persistRoot, wranglerKv } from "./lib/kv.ts";
import { access, checkCreate, checkId, clean, type Flags, OPTIONS, UsageError } from "./lib/token-input.ts";

const BINDING = "TOKENS";
const REVOCATION_NOTE =
  "Revocation can take up to about a minute to reach every Cloudflare location (Workers KV is " +
  "eventually consistent); in local dev it is immediate.";

const HELP = `Manage village-edge API tokens.

Usage:
  npm run token -- create --name NAME --scope SCOPE [--scope ...] [options]
  npm run token -- list [--all]
  npm run token -- show ID
  npm run token -- revoke ID

Create options:
  --name NAME          human name, 1-100 characters (required)
  --scope SCOPE        repeatable, at least one of:
                       ${SCOPES.join(", ")}
  --domain DOMAIN      repeatable; email domains the token may touch: example.com (exact)
                       or *.example.com (subdomains only). Default: any domain.
  --origin ORIGIN      repeatable; makes a browser token: only these origins may use it, e.g.
                       https://app.example.com. Without --origin it is a server token, which
                       every browser origin is refused with.
  --expires WHEN       ISO date/time (2027-01-31, 2027-01-31T12:00:00Z) or a duration from now:
                       ${DURATION_SYNTAX}

Common options:
  --local              wrangler's local state, the one \`wrangler dev\` and \`npm start\` read (default)
  --remote             the deployed TOKENS namespace on Cloudflare (needs \`wrangler login\`)
  --persist-to DIR     local state folder, as \`wrangler dev --persist-to\` (default .wrangler/state)
  --json               machine-readable output
  --all                list: include revoked tokens
  -h, --help           this help

The secret is printed once, by create; list and show never print it (nor its hash).
IDs are public (tok_...): they are what logs and the audit trail carry.
Exit codes: 0 done, 1 not found or failed, 2 usage error.`;

/** No such token: exit 1. */
class NotFound extends Error {}

type Status = "active" | "revoked" | "expired";
const statusOf = (r: { revoked_at?: string; expires_at?: string }, now = Date.now()): Status =>
  r.revoked_at ? "revoked" : r.expires_at && Date.parse(r.expires_at) <= now ? "expired" : "active";

/** The id record without its hash: what `show` and `revoke` print. */
function publicView(r: TokenIndexRecord) {
  const { hash: _hash, ...rest } = r;
  return { ...rest, status: statusOf(r) };
}

function describe(r: ReturnType<typeof publicView>): string {
  const can = access(r);
  const rows: [string, string | undefined][] = [
    ["name", clean(r.name)],
    ["scopes", r.scopes.join(" ")],
    ["may", can.may],
    ["from", can.from],
    ["users", can.users],
    [
      "reviews",
      r.scopes.includes("audit:read")
        ? r.domains
          ? `only audit entries whose target is in ${r.domains.join(" ")} (others are hidden; GET /audit/:id answers 404)`
          : "every audit entry"
        : undefined,
    ],
    ["expires", r.expires_at ?? "never"],
    ["created", r.created_at],
    ["revoked", r.revoked_at],
    ["status", r.status],
  ];
  return rows
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `  ${k.padEnd(8)} ${v}`)
    .join("\n");
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

interface Job {
  command: string;
  flags: Flags;
  /** create: the checked input. */
  input?: NewToken;
  /** show, revoke: the checked id. */
  id?: string;
}

async function run({ command, flags, input, id = "" }: Job, kv: KvLike, store: string): Promise<void> {
  const out = (text: string): void => {
    process.stdout.write(`${text}\n`);
  };
  switch (command) {
    case "create": {
      if (!input) throw new Error("create without checked input");
      const { secret, record } = await createToken(kv, input);
      if (flags.json) return out(JSON.stringify({ token: secret, id: record.id, record }, null, 2));
      out(`Created token ${record.id} in ${store}.`);
      out(describe({ ...record, status: "active" }));
      out("\nSecret (shown only this once: store it now, it cannot be recovered):\n");
      out(`  ${secret}\n`);
      return;
    }
    case "list": {
      const all = (await listTokens(kv))
        .map((t) => ({ ...t, status: statusOf(t) }))
        .sort((a, b) => a.created_at.localeCompare(b.created_at));
      const listed = flags.all ? all : all.filter((t) => t.status !== "revoked");
      // Key metadata holds no domains or origins: read each id record (never its hash) for them.
      const shown: ((typeof listed)[number] & { domains?: string[]; origins?: string[] })[] = [];
      for (let i = 0; i < listed.length; i += 8) {
        const records = await Promise.all(listed.slice(i, i + 8).map((t) => getTokenById(kv, t.id)));
        records.forEach((r, j) => {
          shown.push({ ...listed[i + j], domains: r?.domains, origins: r?.origins });
        });
      }
      if (flags.json) return out(JSON.stringify(shown, null, 2));
      const hidden = all.length - shown.length;
      const note = hidden ? ` (${hidden} revoked not shown; --all shows them)` : "";
      if (shown.length === 0) return out(`No tokens in ${store}${note}.`);
      const head = ["ID", "NAME", "SCOPES", "FROM (ORIGINS)", "DOMAINS", "EXPIRES", "STATUS", "CREATED"];
      const rows = shown.map((t) => [
        t.id,
        clean(t.name),
        t.scopes.join(","),
        t.origins ? t.origins.join(",") : "servers only",
        t.domains ? t.domains.join(",") : "any",
        t.expires_at ?? "never",
        t.status,
        t.created_at,
      ]);
      out(table([head, ...rows]));
      return out(`${shown.length} token(s) in ${store}${note}.`);
    }
    case "show": {
      const r = await getTokenById(kv, id);
      if (!r) throw new NotFound(`no token with id ${id} in ${store}`);
      if (flags.json) return out(JSON.stringify(publicView(r), null, 2));
      out(`Token ${r.id} in ${store}:`);
      return out(describe(publicView(r)));
    }
    case "revoke": {
      const before = await getTokenById(kv, id);
      if (!before) throw new NotFound(`no token with id ${id} in ${store}`);
      const r = await revokeToken(kv, id);
      if (!r) throw new NotFound(`no token with id ${id} in ${store}`);
      if (flags.json) return out(JSON.stringify({ ...publicView(r), note: REVOCATION_NOTE }, null, 2));
      const when = before.revoked_at
        ? `was already revoked at ${r.revoked_at}`
        : `revoked at ${r.revoked_at}`;
      out(`Token ${r.id} ("${clean(r.name)}") ${when}.`);
      return out(REVOCATION_NOTE);
    }
  }
}

const COMMANDS = ["create", "list", "show", "revoke"];

/** Runs the CLI; returns the exit code. */
export async function main(argv: string[]): Promise<number> {
  let parsed: { values: Flags; positionals: string[] };
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    process.stderr.write(`token: ${err instanceof Error ? err.message : String(err)}\nTry --help.\n`);
    return EXIT.usage;
  }
  const { values: flags, positionals } = parsed;
  const command = positionals[0];
  if (flags.help || command === "help") {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  let dispose: (() => Promise<void>) | undefined;
  try {
    if (!command || !COMMANDS.includes(command)) {
      throw new UsageError(command ? `unknown command "${clean(command)}"` : "a command is required");
    }
    if (flags.local && flags.remote) throw new UsageError("choose one of --local and --remote");
    if (flags.remote && flags["persist-to"]) throw new UsageError("--persist-to is for local state only");
    if ((command === "list" && positionals.length > 1) || (command === "create" && positionals.length > 1)) {
      throw new UsageError(`${command} takes no positional arguments`);
    }
    // All input is checked before any store is opened.
    const job: Job = { command, flags };
    if (command === "create") job.input = checkCreate(flags);
    if (command === "show" || command === "revoke") job.id = checkId(command, positionals);
    let kv: KvLike;
    let store: string;
    if (flags.remote) {
      await checkRemoteBinding(BINDING);
      kv = wranglerKv(BINDING, { remote: true });
      store = `remote KV (binding ${BINDING})`;
    } else {
      const root = persistRoot(flags["persist-to"]);
      const local = await openLocalKv(BINDING, flags["persist-to"]);
      kv = local.kv;
      dispose = local.dispose;
      const rel = path.relative(process.cwd(), root);
      store = `local state (${rel && !rel.startsWith("..") ? rel : root})`;
    }
    await run(job, kv, store);
    return 0;
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof UsageError) {
      process.stderr.write(`token: ${message}\nTry --help.\n`);
      return 2;
    }
    process.stderr.write(`token: ${message}\n`);
    return 1;
  } finally {
    await dispose?.();
  }
}

if (isMain(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
