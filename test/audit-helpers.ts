import { env } from "cloudflare:test";
import { expect } from "vitest";
import type { AuditDetail, AuditSummary } from "../src/audit/store.ts";
import { findToken, type NewToken } from "../src/auth/tokens.ts";
import { parseSigningKey } from "../src/model/mac.ts";
import { mint, send } from "./helpers.ts";

/** Retention and the test signing key (vitest.config.ts), for writing entries directly. */
export const WRITE_CONFIG = {
  auditRetentionDays: 400,
  auditSigningKey: parseSigningKey(env.AUDIT_SIGNING_KEY),
};

/** Mints a real token and returns its secret and public id. */
export async function mintWithId(
  scopes: string[],
  name = "test token",
  extra: Partial<NewToken> = {},
): Promise<{ secret: string; id: string }> {
  const secret = await mint(scopes, { name, ...extra });
  const record = await findToken(env.TOKENS, secret);
  if (!record) throw new Error("minted token not found");
  return { secret, id: record.id };
}

/** An address no other test uses. */
export const uniqueEmail = (tag = "user") => `${tag}-${crypto.randomUUID().slice(0, 8)}@example.com`;

/** A private sandbox network seeded with these users; bindings to reach it. */
export async function sandboxNetwork(emails: string[]): Promise<Partial<Env>> {
  const res = await fetch(`${env.VILLAGE_API_BASE}/_sandbox/networks`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      users: emails.map((email) => ({
        email,
        first_name: "F",
        last_name: "L",
        phone_number: "+12025550100",
      })),
    }),
  });
  expect(res.status).toBe(201);
  const { network_id, api_key } = (await res.json()) as { network_id: string; api_key: string };
  return { VILLAGE_NETWORK_ID: network_id, VILLAGE_API_KEY: api_key };
}

/** Queues faults for the next PATCH requests to a sandbox network. */
export async function sandboxFaults(networkId: string, faults: unknown[]): Promise<void> {
  const res = await fetch(`${env.VILLAGE_API_BASE}/_sandbox/networks/${networkId}/faults`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ faults }),
  });
  expect(res.status).toBe(200);
}

/** What the sandbox network received. */
export async function sandboxReceived(networkId: string): Promise<unknown[]> {
  const res = await fetch(`${env.VILLAGE_API_BASE}/_sandbox/networks/${networkId}/received`);
  return ((await res.json()) as { received: unknown[] }).received;
}

let reviewer: string | undefined;
/** A token with `audit:read`, minted once per file. */
export async function reviewerToken(): Promise<string> {
  reviewer ??= await mint(["audit:read"], { name: "reviewer" });
  return reviewer;
}

/** `GET /audit?<query>` as a reviewer; asserts 200 and returns the page. */
export async function review(
  query: Record<string, string> = {},
  options: { bindings?: Partial<Env> } = {},
): Promise<{ entries: AuditSummary[]; cursor: string | null }> {
  const res = await send(`/audit?${new URLSearchParams(query)}`, {
    headers: { Authorization: `Bearer ${await reviewerToken()}` },
    bindings: options.bindings,
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return res.json();
}

/** Follows cursors until the query is exhausted (bounded); returns every entry seen. */
export async function reviewAll(
  query: Record<string, string> = {},
  maxPages = 2000,
): Promise<AuditSummary[]> {
  const all: AuditSummary[] = [];
  let cursor: string | null = null;
  for (let i = 0; i < maxPages; i++) {
    const page = await review(cursor ? { ...query, cursor } : query);
    all.push(...page.entries);
    cursor = page.cursor;
    if (cursor === null) return all;
  }
  throw new Error(`query not exhausted after ${maxPages} pages`);
}

/** `GET /audit/:id` as a reviewer. */
export async function reviewOne(id: string): Promise<AuditDetail> {
  const res = await send(`/audit/${id}`, { headers: { Authorization: `Bearer ${await reviewerToken()}` } });
  expect(res.status).toBe(200);
  return res.json();
}

/** Every AUDIT key of this test file with its metadata and value, for scans. */
export async function dumpAudit(): Promise<{ name: string; metadata: string; value: string }[]> {
  const out: { name: string; metadata: string; value: string }[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.AUDIT.list({ cursor });
    for (const key of page.keys) {
      out.push({
        name: key.name,
        metadata: JSON.stringify(key.metadata ?? null),
        value: (await env.AUDIT.get(key.name, "text")) ?? "",
      });
    }
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return out;
}

/** Keys under a prefix (names only). */
export async function auditKeysUnder(prefix: string): Promise<string[]> {
  const page = await env.AUDIT.list({ prefix });
  return page.keys.map((k) => k.name);
}

/**
 * The AUDIT binding with `put` failing for keys `fails` picks (others pass through).
 * `puts` records every attempted key.
 */
export function failingPuts(fails: (key: string, attempt: number) => boolean) {
  const puts: string[] = [];
  const kv = new Proxy(env.AUDIT, {
    get(target, prop) {
      if (prop === "put") {
        return async (
          key: string,
          ...rest: Parameters<KVNamespace["put"]> extends [string, ...infer R] ? R : never
        ) => {
          puts.push(key);
          if (fails(key, puts.filter((k) => k === key).length))
            throw new Error("KV PUT failed: 503 injected");
          return target.put(key, ...rest);
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { kv, puts };
}

/** The AUDIT binding with every read (`get`, `list`) failing. */
export function failingReads(): KVNamespace {
  return new Proxy(env.AUDIT, {
    get(target, prop) {
      if (prop === "get" || prop === "list" || prop === "getWithMetadata") {
        return async () => {
          throw new Error("KV GET failed: 503 injected");
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/**
 * The AUDIT binding with every write (`put`, `delete`) and read (`list`, `get`) counted by key,
 * passed through to the real namespace: what a security test holds a request's KV cost to.
 */
export function countingAudit() {
  const writes: string[] = [];
  const reads: string[] = [];
  const kv = new Proxy(env.AUDIT, {
    get(target, prop) {
      const value = Reflect.get(target, prop);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        if (prop === "put" || prop === "delete") writes.push(String(args[0]));
        if (prop === "list" || prop === "get" || prop === "getWithMetadata") reads.push(String(prop));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { kv, writes, reads };
}
