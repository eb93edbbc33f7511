/**
 * Operators' token CLI: `npm run token -- create|list|show|revoke|rotate [flags]` (`--help`).
 * It uses the token management API when it finds a server (scripts/lib/server.ts: `--url` or
 * VILLAGE_EDGE_URL with ADMIN_TOKEN, or the running `npm start`'s state file), and the KV
 * namespaces directly otherwise, or with --local/--remote, or to mint a `tokens:admin` token
 * (scripts/lib/token-direct.ts, imported only then: it loads wrangler). The output is the same
 * either way. Token logic lives in src/auth/tokens.ts; this file parses flags and prints.
 * Exit codes: 0 done, 1 not found or failed, 2 usage error.
 */
import { parseArgs } from "node:util";
import { ADMIN_SCOPE, SCOPES } from "../src/auth/scopes.ts";
import type { NewToken, TokenView } from "../src/auth/tokens.ts";
import { DURATION_SYNTAX, EXIT, isMain, parseDuration } from "./lib/cli.ts";
import { findServer } from "./lib/server.ts";
import { apiBackend, type TokenBackend } from "./lib/token-backend.ts";
import { access, checkCreate, checkId, clean, type Flags, OPTIONS, UsageError } from "./lib/token-input.ts";

const REVOCATION_NOTE =
  "Revocation can take up to about a minute to reach every Cloudflare location (Workers KV is " +
  "eventually consistent); in local dev it is immediate.";
const ROTATION_NOTE =
  "The old secret may keep working for up to about a minute after its overlap ends in Cloudflare " +
  "locations that read it recently (Workers KV is eventually consistent); in local dev it is exact.";

const HELP = `Manage village-edge API tokens.

Usage:
  npm run token -- create --name NAME --scope SCOPE [--scope ...] [options]
  npm run token -- list [--all]
  npm run token -- show ID
  npm run token -- revoke ID
  npm run token -- rotate ID [--overlap 1h]

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
                       (${ADMIN_SCOPE}: required, at most 30 days; it must be the only scope)

Rotate options:
  --overlap DURATION   how long the old secret keeps working: 0s to 7d (default 1h)

Where the tokens are (default: the running server's API, else the local state):
  --url URL            a deployed Worker's token API (TOKEN_ADMIN="on"), with a ${ADMIN_SCOPE}
                       token in $ADMIN_TOKEN; VILLAGE_EDGE_URL does the same as --url
  (npm start)          while it runs, its API, with the admin token it minted for this CLI
  --local              wrangler's local state directly, the one \`npm start\` reads
  --remote             the deployed TOKENS namespace on Cloudflare directly (\`wrangler login\`)
  --persist-to DIR     local state folder, as \`wrangler dev --persist-to\` (default .wrangler/state)
  create --scope ${ADMIN_SCOPE} always takes the direct path (--local unless --remote): the API
  never makes an admin token.

Other options:
  --json               machine-readable output
  --all                list: include revoked tokens
  --expiring DURATION  list: only active tokens expiring within it (7d)
  -h, --help           this help

The secret is printed once, by create and rotate; list and show never print it (nor its hash).
Every create, rotate and revoke is an entry in the audit trail (npm run audit -- --token ID).
IDs are public (tok_...): they are what logs and the audit trail carry.
Exit codes: 0 done, 1 not found or failed, 2 usage error.`;

/** No such token: exit 1. */
class NotFound extends Error {}

function describe(r: TokenView): string {
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
    ["rotated", r.rotated_at],
    ["old key", r.previous_expires_at && `works until ${r.previous_expires_at}`],
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
  /** show, revoke, rotate: the checked id. */
  id?: string;
  /** rotate: the overlap in seconds. */
  overlapS?: number;
  /** list --expiring: the latest expiry shown (epoch ms). */
  expiringBy?: number;
}

async function run({ command, flags, input, id = "", overlapS = 0, expiringBy }: Job, tokens: TokenBackend) {
  const store = tokens.label;
  const out = (text: string): void => {
    process.stdout.write(`${text}\n`);
  };
  switch (command) {
    case "create": {
      if (!input) throw new Error("create without checked input");
      const { secret, record } = await tokens.create(input);
      if (flags.json) return out(JSON.stringify({ token: secret, id: record.id, record }, null, 2));
      out(`Created token ${record.id} in ${store}.`);
      out(describe({ ...record, status: "active" }));
      out("\nSecret (shown only this once: store it now, it cannot be recovered):\n");
      out(`  ${secret}\n`);
      return;
    }
    case "list": {
      const all = (await tokens.list()).sort((a, b) => a.created_at.localeCompare(b.created_at));
      const expiring = (t: (typeof all)[number]) =>
        expiringBy === undefined ||
        (t.status === "active" && t.expires_at !== undefined && Date.parse(t.expires_at) <= expiringBy);
      const listed = all.filter((t) => (flags.all || t.status !== "revoked") && expiring(t));
      // A listing holds no domains or origins (key metadata): read each token's record for them,
      // so the table says exactly what each may do (servers only, or these origins; domains).
      const shown: ((typeof listed)[number] & { domains?: string[]; origins?: string[] })[] = [];
      for (let i = 0; i < listed.length; i += 8) {
        const views = await Promise.all(listed.slice(i, i + 8).map((t) => tokens.show(t.id)));
        views.forEach((v, j) => {
          shown.push({ ...listed[i + j], domains: v?.domains, origins: v?.origins });
        });
      }
      if (flags.json) return out(JSON.stringify(shown, null, 2));
      const hidden = all.filter(expiring).length - shown.length;
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
      const r = await tokens.show(id);
      if (!r) throw new NotFound(`no token with id ${id} in ${store}`);
      if (flags.json) return out(JSON.stringify(r, null, 2));
      out(`Token ${r.id} in ${store}:`);
      return out(describe(r));
    }
    case "revoke": {
      const revoked = await tokens.revoke(id);
      if (!revoked) throw new NotFound(`no token with id ${id} in ${store}`);
      const { wasRevoked, ...r } = revoked;
      if (flags.json) return out(JSON.stringify({ ...r, note: REVOCATION_NOTE }, null, 2));
      const when = wasRevoked ? `was already revoked at ${r.revoked_at}` : `revoked at ${r.revoked_at}`;
      out(`Token ${r.id} ("${clean(r.name)}") ${when}.`);
      return out(REVOCATION_NOTE);
    }
    case "rotate": {
      const rotated = await tokens.rotate(id, overlapS);
      if (rotated === "not_found") throw new NotFound(`no token with id ${id} in ${store}`);
      if (rotated === "inactive") throw new NotFound(`token ${id} is revoked or expired: create a new one`);
      const { secret, record } = rotated;
      if (flags.json) return out(JSON.stringify({ token: secret, id, record, note: ROTATION_NOTE }, null, 2));
      out(`Rotated token ${id} ("${clean(record.name)}") in ${store}: same id, scopes and expiry.`);
      out(
        record.previous_expires_at
          ? `The old secret keeps working until ${record.previous_expires_at}, then is refused.`
          : "The old secret is refused from now on.",
      );
      out(ROTATION_NOTE);
      out("\nNew secret (shown only this once: store it now, it cannot be recovered):\n");
      out(`  ${secret}\n`);
      return;
    }
  }
}

const COMMANDS = ["create", "list", "show", "revoke", "rotate"];

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
  let tokens: TokenBackend | undefined;
  try {
    if (!command || !COMMANDS.includes(command)) {
      throw new UsageError(command ? `unknown command "${clean(command)}"` : "a command is required");
    }
    const direct = [flags.local, flags.remote, flags.url !== undefined].filter(Boolean).length;
    if (direct > 1) throw new UsageError("choose one of --local, --remote and --url");
    if (flags.remote && flags["persist-to"]) throw new UsageError("--persist-to is for local state only");
    if ((command === "list" && positionals.length > 1) || (command === "create" && positionals.length > 1)) {
      throw new UsageError(`${command} takes no positional arguments`);
    }
    if (flags.overlap !== undefined && command !== "rotate") throw new UsageError("--overlap is for rotate");
    if (flags.expiring !== undefined && command !== "list") throw new UsageError("--expiring is for list");
    // All input is checked before any store is opened.
    const job: Job = { command, flags };
    if (command === "create") job.input = await checkCreate(flags);
    if (command === "show" || command === "revoke" || command === "rotate")
      job.id = checkId(command, positionals);
    if (command === "rotate") job.overlapS = checkOverlap(flags.overlap);
    if (flags.expiring !== undefined) job.expiringBy = Date.now() + durationFlag("expiring", flags.expiring);
    const mintsAdmin = job.input?.scopes.includes(ADMIN_SCOPE) ?? false;
    const server = flags.local || flags.remote || mintsAdmin ? undefined : findServer(flags.url);
    if (mintsAdmin && flags.url !== undefined) {
      throw new UsageError(`the API never makes a ${ADMIN_SCOPE} token: use --local or --remote`);
    }
    if (server) {
      const adminToken = server.source === "state-file" ? server.adminToken : process.env.ADMIN_TOKEN;
      if (!adminToken) {
        throw new UsageError(`${server.url} needs a ${ADMIN_SCOPE} token in $ADMIN_TOKEN (see --help)`);
      }
      tokens = apiBackend(server.url, adminToken);
    } else {
      const { directBackend } = await import("./lib/token-direct.ts");
      tokens = await directBackend({ remote: !!flags.remote, persistTo: flags["persist-to"] });
    }
    await run(job, tokens);
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
    await tokens?.close();
  }
}

/** A duration flag, in ms. */
function durationFlag(flag: string, text: string): number {
  try {
    return parseDuration(text);
  } catch (err) {
    throw new UsageError(`--${flag}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** `--overlap`: 0s to 7d, default 1h; in seconds. */
function checkOverlap(text: string | undefined): number {
  if (text === undefined) return 3600;
  const ms = durationFlag("overlap", text);
  if (ms > 7 * 86_400_000) throw new UsageError("--overlap must be at most 7d");
  return Math.floor(ms / 1000);
}

if (isMain(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
