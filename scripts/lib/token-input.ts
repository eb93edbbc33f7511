/**
 * The token CLI's command line: its flags, and the checks that turn them into a `NewToken` or a
 * token id before any store is opened. Value rules come from src/auth/tokens.ts (`buildRecord`).
 */
import type { parseArgs } from "node:util";
import { SCOPES } from "../../src/auth/scopes.ts";
import type { NewToken } from "../../src/auth/tokens.ts";

/** The record rules (zod), loaded only by `create`: other commands need not pay for them. */
const records = () => import("../../src/auth/tokens.ts");

import { FIELDS } from "../../src/model/fields.ts";
import { DURATION_SYNTAX, parseDuration } from "./cli.ts";

/** Bad command line or input: exit 2. */
export class UsageError extends Error {}

/** Every flag the CLI knows; `parseArgs` refuses any other. */
export const OPTIONS = {
  name: { type: "string" },
  scope: { type: "string", multiple: true },
  domain: { type: "string", multiple: true },
  origin: { type: "string", multiple: true },
  expires: { type: "string" },
  overlap: { type: "string" },
  expiring: { type: "string" },
  url: { type: "string" },
  local: { type: "boolean" },
  remote: { type: "boolean" },
  "persist-to": { type: "string" },
  json: { type: "boolean" },
  all: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

export type Flags = ReturnType<
  typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>
>["values"];

const ID = /^tok_[0-9a-f]{16}$/;
// Control characters would let a token name rewrite an operator's terminal.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** The string with control characters shown as `?`. */
export const clean = (s: string): string => s.replace(new RegExp(CONTROL, "g"), "?");

/** A duration from now (`90m`, `12h`, `30d`: scripts/lib/cli.ts `parseDuration`) or an ISO date/time; in the future. */
export function parseExpires(raw: string, now = Date.now()): Date {
  let at: number;
  if (/^\d+[a-z]$/.test(raw)) {
    try {
      at = now + parseDuration(raw);
    } catch (err) {
      throw new UsageError(`--expires ${clean((err as Error).message)}`);
    }
  } else if (/^\d{4}-\d{2}-\d{2}([T ][0-9:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(raw)) {
    at = Date.parse(raw);
  } else {
    throw new UsageError(
      `--expires "${clean(raw)}" is neither an ISO date (2027-01-31) nor a duration (${DURATION_SYNTAX})`,
    );
  }
  if (!Number.isFinite(at)) throw new UsageError(`--expires "${clean(raw)}" is not a valid date`);
  if (at <= now) throw new UsageError(`--expires "${clean(raw)}" is in the past`);
  return new Date(at);
}

/** What a token's record lets it do, in words: `show` and `list` print these. */
export function access(r: { scopes: string[]; domains?: string[]; origins?: string[] }) {
  const may = r.scopes.map((s) =>
    s === "users:write"
      ? `change ${FIELDS.join(", ")}`
      : s.startsWith("users:write:")
        ? `change ${s.slice("users:write:".length)}`
        : s === "audit:read"
          ? "read the audit trail"
          : s,
  );
  return {
    may: may.join("; "),
    from: r.origins
      ? `browsers on ${r.origins.join(", ")} only (no server use)`
      : "servers only (refused from any browser origin)",
    users: r.domains
      ? `emails in ${r.domains.map((d) => (d.startsWith("*.") ? `${d} (subdomains only)` : d)).join(", ")}`
      : "any email domain",
  };
}

/** Checks one --domain/--origin value with the same rules the token record uses (src/auth/tokens.ts). */
async function checkValue(flag: "domain" | "origin", value: string): Promise<void> {
  const { buildRecord } = await records();
  try {
    buildRecord({ name: "check", scopes: ["audit:read"], [`${flag}s`]: [value] });
  } catch {
    const expected =
      flag === "domain"
        ? "a host name like example.com, or *.example.com for its subdomains only"
        : "scheme://host[:port] with http or https and no path, like https://app.example.com";
    throw new UsageError(`--${flag} "${clean(value)}" is not valid: expected ${expected}`);
  }
}

/** Checks `create`'s flags and returns its input. */
export async function checkCreate(flags: Flags): Promise<NewToken> {
  const name = flags.name?.trim();
  if (!name) throw new UsageError("create needs --name");
  if (name.length > 100) throw new UsageError("--name must be at most 100 characters");
  if (CONTROL.test(name)) throw new UsageError("--name must not contain control characters");
  const scopes = flags.scope ?? [];
  if (scopes.length === 0) throw new UsageError(`create needs at least one --scope (${SCOPES.join(", ")})`);
  for (const s of scopes) {
    if (!(SCOPES as readonly string[]).includes(s)) {
      throw new UsageError(`unknown scope "${clean(s)}"; known scopes: ${SCOPES.join(", ")}`);
    }
  }
  for (const d of flags.domain ?? []) await checkValue("domain", d);
  for (const o of flags.origin ?? []) await checkValue("origin", o);
  const { buildRecord } = await records();
  const expiresAt = flags.expires === undefined ? undefined : parseExpires(flags.expires);
  const input = { name, scopes, domains: flags.domain, origins: flags.origin, expiresAt };
  try {
    buildRecord(input); // the last word on the whole record, before anything is written
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  return input;
}

/** Checks the ID argument of `show` and `revoke`. */
export function checkId(command: string, positionals: string[]): string {
  const id = positionals[1];
  if (id === undefined || positionals.length > 2) throw new UsageError(`usage: ${command} ID (tok_...)`);
  if (!ID.test(id)) throw new UsageError(`"${clean(id)}" is not a token id (tok_ and 16 hex digits)`);
  return id;
}
