/**
 * Runs in every test file (vitest `setupFiles`). The secret canary's last check: after the
 * file's tests, every key, metadata and value in the AUDIT namespace is scanned for the canary
 * Village key and for anything shaped like one of our tokens. Also hands the file's observed
 * answers to the contract check (test/contract.ts).
 */
import { env } from "cloudflare:test";
import { afterAll, expect } from "vitest";
import { observationsLine } from "./contract.ts";

const TOKEN = /vge_[0-9a-f]{72}/;

// The contract check's input: this file's observed answers, for test/summary-reporter.ts.
afterAll(() => {
  console.log(observationsLine());
});

afterAll(async () => {
  let cursor: string | undefined;
  let scanned = 0;
  do {
    const page = await env.AUDIT.list({ cursor });
    const names = page.keys.map((k) => k.name);
    const found = new Map<string, string | null>();
    for (let i = 0; i < names.length; i += 100) {
      for (const [k, v] of await env.AUDIT.get(names.slice(i, i + 100), "text")) found.set(k, v);
    }
    const values = names.map((name) => found.get(name));
    page.keys.forEach((key, i) => {
      const stored = `${key.name}\n${JSON.stringify(key.metadata ?? null)}\n${values[i] ?? ""}`;
      expect(stored.includes(env.VILLAGE_API_KEY), `the Village key is in audit key ${key.name}`).toBe(false);
      expect(TOKEN.test(stored), `a token is in audit key ${key.name}`).toBe(false);
    });
    scanned += page.keys.length;
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor && scanned < 20_000);
});
