import { ProblemError } from "./http/errors.ts";
import { FIELDS, type Field } from "./model/fields.ts";
import { parseSigningKey, type SigningKey } from "./model/mac.ts";

/** Everything the Worker reads from its bindings, checked. The one place for configuration. */
export interface Config {
  /** Village API base: origin plus optional path prefix, no trailing slash. */
  villageBase: string;
  /** Origin of `villageBase`; the built upstream URL must have exactly this origin. */
  villageOrigin: string;
  villageNetworkId: string;
  villageApiKey: string;
  upstreamTimeoutMs: number;
  /** End-user JWT sign-in, or null when `AUTH_*` are unset (the feature is off). */
  userAuth: UserAuthConfig | null;
  /** What the audit trail keeps of field values: `masked` (default), `full` or `none`. */
  auditValues: AuditValues;
  /** How long audit entries live, in days (KV `expiration`). */
  auditRetentionDays: number;
  /** The key every audit record is signed with (`AUDIT_SIGNING_KEY`, `<kid>:<base64>`). */
  auditSigningKey: SigningKey;
}

declare module "hono" {
  interface ContextVariableMap {
    /** The checked configuration, set by a route that needs it (users/route.ts). */
    config: Readonly<Config>;
  }
}

/** How end-user JWTs are verified, and what a signed-in user may change on their own record. */
export interface UserAuthConfig {
  jwksUrl: string;
  issuer: string;
  audience: string;
  selfServiceFields: readonly Field[];
}

export const AUDIT_VALUES = ["masked", "full", "none"] as const;
export type AuditValues = (typeof AUDIT_VALUES)[number];

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);
/** A plain identifier; `.` and `..` alone are dot segments that a URL would resolve away. */
const NETWORK_ID = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,128}$/;
/** Characters no HTTP header value may carry. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROL = /[\u0000-\u001f\u007f]/;

const misconfigured = (binding: string, why: string): ProblemError =>
  new ProblemError("internal", "The service is misconfigured.", {
    logDetail: `configuration: ${binding} ${why}`,
  });

function parseBase(raw: string | undefined): URL {
  let url: URL;
  try {
    url = new URL(raw ?? "");
  } catch {
    throw misconfigured("VILLAGE_API_BASE", "is not a URL");
  }
  const secure = url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK.has(url.hostname));
  if (!secure) throw misconfigured("VILLAGE_API_BASE", "must be https (http only on loopback)");
  if (url.search || url.hash || url.username || url.password) {
    throw misconfigured("VILLAGE_API_BASE", "must not carry credentials, a query or a fragment");
  }
  return url;
}

/** An integer binding within `[min, max]`, `fallback` when unset or empty. */
function parseInteger(
  binding: string,
  raw: string | undefined,
  { fallback, min, max }: { fallback: number; min: number; max: number },
): number {
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw misconfigured(binding, `must be an integer from ${min} to ${max}`);
  }
  return value;
}

function parseAuditSigningKey(raw: string | undefined): SigningKey {
  if (typeof raw !== "string" || raw.trim() === "") {
    throw misconfigured(
      "AUDIT_SIGNING_KEY",
      "is missing (wrangler secret put AUDIT_SIGNING_KEY; see README)",
    );
  }
  try {
    return parseSigningKey(raw);
  } catch (err) {
    throw misconfigured("AUDIT_SIGNING_KEY", (err as Error).message);
  }
}

function parseAuditValues(raw: string | undefined): AuditValues {
  if (raw === undefined || raw === "") return "masked";
  const mode = AUDIT_VALUES.find((m) => m === raw);
  if (!mode) throw misconfigured("AUDIT_VALUES", "must be masked, full or none");
  return mode;
}

/**
 * Parses and checks the bindings. Throws a 500 {@link ProblemError} whose wire body is
 * generic and whose log line names the binding at fault.
 */
export function parseConfig(env: Env): Config {
  const base = parseBase(env.VILLAGE_API_BASE);
  const networkId = env.VILLAGE_NETWORK_ID;
  if (!networkId || !NETWORK_ID.test(networkId)) {
    throw misconfigured("VILLAGE_NETWORK_ID", "is missing or not a plain identifier");
  }
  const apiKey = env.VILLAGE_API_KEY;
  if (typeof apiKey !== "string" || apiKey.trim() === "") {
    throw misconfigured("VILLAGE_API_KEY", "is missing (wrangler secret put VILLAGE_API_KEY)");
  }
  if (CONTROL.test(apiKey.trim())) {
    throw misconfigured("VILLAGE_API_KEY", "contains a line break or control character");
  }
  return {
    villageBase: `${base.origin}${base.pathname.replace(/\/+$/, "")}`,
    villageOrigin: base.origin,
    villageNetworkId: networkId,
    villageApiKey: apiKey.trim(),
    upstreamTimeoutMs: parseInteger("UPSTREAM_TIMEOUT_MS", env.UPSTREAM_TIMEOUT_MS, {
      fallback: 10_000,
      min: 100,
      max: 25_000,
    }),
    userAuth: parseUserAuth(env),
    auditValues: parseAuditValues(env.AUDIT_VALUES),
    ...parseAuditWriting(env),
  };
}

/**
 * What every audit write needs: the retention (`AUDIT_RETENTION_DAYS`, 1 to 3650 days, 400
 * unless set) and the signing key. Also how the token CLI's direct path reads them
 * (src/tokens/lifecycle.ts), so that its entries expire and are signed as the Worker's are.
 */
export function parseAuditWriting(env: {
  AUDIT_RETENTION_DAYS?: string;
  AUDIT_SIGNING_KEY?: string;
}): Pick<Config, "auditRetentionDays" | "auditSigningKey"> {
  return {
    auditRetentionDays: parseInteger("AUDIT_RETENTION_DAYS", env.AUDIT_RETENTION_DAYS, {
      fallback: 400,
      min: 1,
      max: 3650,
    }),
    auditSigningKey: parseAuditSigningKey(env.AUDIT_SIGNING_KEY),
  };
}

/**
 * `ALLOWED_ORIGINS`: comma-separated exact browser origins (`scheme://host[:port]`), https
 * except on loopback. Empty or unset allows no browser origin; `*` is refused.
 */
export function parseAllowedOrigins(env: Env): readonly string[] {
  const raw = env.ALLOWED_ORIGINS ?? "";
  const out: string[] = [];
  for (const entry of raw.split(",")) {
    const origin = entry.trim();
    if (origin === "") continue;
    let url: URL | undefined;
    try {
      url = new URL(origin);
    } catch {
      url = undefined;
    }
    const secure = url?.protocol === "https:" || (url?.protocol === "http:" && LOOPBACK.has(url.hostname));
    // An entry must already be in the form a browser sends: lowercase, no path, no trailing slash.
    if (!url || !secure || url.origin !== origin) {
      throw misconfigured("ALLOWED_ORIGINS", `has an entry that is not an exact https origin: ${origin}`);
    }
    out.push(origin);
  }
  return out;
}

/**
 * `AUTH_JWKS_URL`, `AUTH_ISSUER`, `AUTH_AUDIENCE` (all three or none) and
 * `SELF_SERVICE_FIELDS` (default: every field). Null when end-user sign-in is off.
 */
export function parseUserAuth(env: Env): UserAuthConfig | null {
  const jwks = env.AUTH_JWKS_URL?.trim() ?? "";
  const issuer = env.AUTH_ISSUER?.trim() ?? "";
  const audience = env.AUTH_AUDIENCE?.trim() ?? "";
  const set = [jwks, issuer, audience].filter((v) => v !== "").length;
  if (set === 0) return null;
  if (set !== 3) {
    throw misconfigured("AUTH_JWKS_URL/AUTH_ISSUER/AUTH_AUDIENCE", "must be set all three or none");
  }
  let url: URL;
  try {
    url = new URL(jwks);
  } catch {
    throw misconfigured("AUTH_JWKS_URL", "is not a URL");
  }
  const secure = url.protocol === "https:" || (url.protocol === "http:" && LOOPBACK.has(url.hostname));
  if (!secure || url.username || url.password || url.hash) {
    throw misconfigured("AUTH_JWKS_URL", "must be https (http only on loopback), without credentials");
  }
  const rawFields = env.SELF_SERVICE_FIELDS?.trim() ?? "";
  const names = rawFields === "" ? [...FIELDS] : rawFields.split(",").map((f: string) => f.trim());
  const fields = FIELDS.filter((f) => names.includes(f));
  if (fields.length !== new Set(names).size) {
    throw misconfigured("SELF_SERVICE_FIELDS", `must list only ${FIELDS.join(", ")}`);
  }
  return { jwksUrl: url.href, issuer, audience, selfServiceFields: fields };
}

/**
 * `parse`, reused while the bindings it reads (`names`) hold the values of its last parse:
 * they are the same for every request of a deployment, so a request pays a few comparisons
 * instead of URL parses. A value that does not parse is never kept (the next call throws too).
 */
function reusedWhileSame<T>(names: readonly (keyof Env)[], parse: (env: Env) => T): (env: Env) => T {
  let last: { raw: unknown[]; value: T } | undefined;
  return (env) => {
    const raw = names.map((name) => env[name]);
    if (last?.raw.every((value, i) => value === raw[i])) return last.value;
    const value = parse(env);
    last = { raw, value };
    return value;
  };
}

/** The bindings {@link parseUserAuth} reads (a test holds each parser to its list). */
export const USER_AUTH_BINDINGS = [
  "AUTH_JWKS_URL",
  "AUTH_ISSUER",
  "AUTH_AUDIENCE",
  "SELF_SERVICE_FIELDS",
] as const satisfies readonly (keyof Env)[];

/** The bindings {@link parseConfig} reads. */
export const CONFIG_BINDINGS = [
  "VILLAGE_API_BASE",
  "VILLAGE_NETWORK_ID",
  "VILLAGE_API_KEY",
  "UPSTREAM_TIMEOUT_MS",
  ...USER_AUTH_BINDINGS,
  "AUDIT_VALUES",
  "AUDIT_RETENTION_DAYS",
  "AUDIT_SIGNING_KEY",
] as const satisfies readonly (keyof Env)[];

/** The bindings {@link parseAllowedOrigins} reads. */
export const ORIGIN_BINDINGS = ["ALLOWED_ORIGINS"] as const satisfies readonly (keyof Env)[];

/** {@link parseConfig}, parsed again only when one of its bindings changes; frozen. */
export const configOf: (env: Env) => Readonly<Config> = reusedWhileSame(CONFIG_BINDINGS, (env) =>
  Object.freeze(parseConfig(env)),
);

/** {@link parseUserAuth}, parsed again only when one of its bindings changes. */
export const userAuthOf = reusedWhileSame(USER_AUTH_BINDINGS, parseUserAuth);

/** {@link parseAllowedOrigins}, parsed again only when `ALLOWED_ORIGINS` changes. */
export const allowedOriginsOf = reusedWhileSame(ORIGIN_BINDINGS, parseAllowedOrigins);

/**
 * `TOKEN_ADMIN`: `on` serves the token management API (`/tokens`, src/tokens/); `off`, empty or
 * unset: those routes do not exist (404). Off unless configured: wrangler.toml ships `off`.
 */
export function parseTokenAdmin(env: Env): boolean {
  const raw = env.TOKEN_ADMIN ?? "";
  if (raw === "" || raw === "off") return false;
  if (raw === "on") return true;
  throw misconfigured("TOKEN_ADMIN", 'must be "on" or "off"');
}

/** The bindings {@link parseTokenAdmin} reads. */
export const TOKEN_ADMIN_BINDINGS = ["TOKEN_ADMIN"] as const satisfies readonly (keyof Env)[];

/** {@link parseTokenAdmin}, parsed again only when `TOKEN_ADMIN` changes. */
export const tokenAdminOf = reusedWhileSame(TOKEN_ADMIN_BINDINGS, parseTokenAdmin);
