import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./context.ts";
import { ProblemError } from "./errors.ts";

/** Everything the Worker reads from its bindings, checked. The one place for configuration. */
export interface Config {
  /** Village API base: origin plus optional path prefix, no trailing slash. */
  villageBase: string;
  /** Origin of `villageBase`; the built upstream URL must have exactly this origin. */
  villageOrigin: string;
  villageNetworkId: string;
  villageApiKey: string;
  upstreamTimeoutMs: number;
  /** What the audit trail keeps of field values: `masked` (default), `full` or `none`. */
  auditValues: AuditValues;
  /** How long audit entries live, in days (KV `expiration`). */
  auditRetentionDays: number;
}

export const AUDIT_VALUES = ["masked", "full", "none"] as const;
export type AuditValues = (typeof AUDIT_VALUES)[number];

const LOOPBACK = new Set(["127.0.0.1", "localhost", "[::1]"]);
const NETWORK_ID = /^[A-Za-z0-9._-]{1,128}$/;

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

function parseTimeout(raw: string | undefined): number {
  if (raw === undefined || raw === "") return 10_000;
  const ms = Number(raw);
  if (!Number.isInteger(ms) || ms < 100 || ms > 25_000) {
    throw misconfigured("UPSTREAM_TIMEOUT_MS", "must be an integer from 100 to 25000");
  }
  return ms;
}

function parseAuditValues(raw: string | undefined): AuditValues {
  if (raw === undefined || raw === "") return "masked";
  const mode = AUDIT_VALUES.find((m) => m === raw);
  if (!mode) throw misconfigured("AUDIT_VALUES", "must be masked, full or none");
  return mode;
}

function parseRetentionDays(raw: string | undefined): number {
  if (raw === undefined || raw === "") return 400;
  const days = Number(raw);
  if (!Number.isInteger(days) || days < 1 || days > 3650) {
    throw misconfigured("AUDIT_RETENTION_DAYS", "must be an integer from 1 to 3650");
  }
  return days;
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
  return {
    villageBase: `${base.origin}${base.pathname.replace(/\/+$/, "")}`,
    villageOrigin: base.origin,
    villageNetworkId: networkId,
    villageApiKey: apiKey.trim(),
    upstreamTimeoutMs: parseTimeout(env.UPSTREAM_TIMEOUT_MS),
    auditValues: parseAuditValues(env.AUDIT_VALUES),
    auditRetentionDays: parseRetentionDays(env.AUDIT_RETENTION_DAYS),
  };
}

/** Parses the configuration once per request and puts it on the context. */
export const config = (): MiddlewareHandler<AppEnv> =>
  async function config(c, next) {
    c.set("config", parseConfig(c.env));
    await next();
  };
