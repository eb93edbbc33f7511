import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  buildRecord,
  createToken,
  findToken,
  generateSecret,
  getTokenById,
  hashSecret,
  isWellFormedToken,
  listTokens,
  revokeToken,
  TOKEN_LENGTH,
  TOKEN_PATTERN,
} from "../src/auth/tokens.ts";

/** CRC-32 (IEEE), bit by bit: an independent check of the table-driven one in src/. */
function crc32(text: string): string {
  let crc = 0xffffffff;
  for (const byte of new TextEncoder().encode(text)) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1;
  }
  return ((crc ^ 0xffffffff) >>> 0).toString(16).padStart(8, "0");
}

/** Every key, value and metadata in TOKENS, read page by page. */
async function dumpTokens(): Promise<string[]> {
  const out: string[] = [];
  let cursor: string | undefined;
  do {
    const page = await env.TOKENS.list({ cursor });
    for (const key of page.keys) {
      out.push(key.name, JSON.stringify(key.metadata ?? null), (await env.TOKENS.get(key.name)) ?? "");
    }
    cursor = page.list_complete ? undefined : page.cursor;
  } while (cursor);
  return out;
}

const unique = (label: string) => `${label} ${crypto.randomUUID()}`;

describe("secrets", () => {
  it("check the CRC-32 used here against its standard test vector", () => {
    expect(crc32("123456789")).toBe("cbf43926");
  });

  it("are vge_ + 64 hex + an 8-hex CRC-32 of what precedes it", () => {
    for (let i = 0; i < 50; i++) {
      const secret = generateSecret();
      expect(secret).toHaveLength(TOKEN_LENGTH);
      expect(TOKEN_LENGTH).toBe(76);
      expect(secret).toMatch(TOKEN_PATTERN);
      expect(secret).toMatch(/^vge_[0-9a-f]{72}$/);
      expect(secret.slice(-8)).toBe(crc32(secret.slice(0, -8)));
      expect(isWellFormedToken(secret)).toBe(true);
    }
  });

  it("carry 256 random bits: no repeats, every hex digit at every position over many draws", () => {
    const secrets = Array.from({ length: 400 }, generateSecret);
    expect(new Set(secrets).size).toBe(secrets.length);
    const bodies = secrets.map((s) => s.slice(4, 68));
    for (let pos = 0; pos < 64; pos += 9) {
      const seen = new Set(bodies.map((b) => b[pos]));
      expect(seen.size, `position ${pos}`).toBe(16);
    }
  });

  it("are rejected after any single-character change", () => {
    const secret = generateSecret();
    for (let i = 0; i < secret.length; i++) {
      for (const replacement of ["0", "f", "a", "G", "_"]) {
        if (secret[i] === replacement) continue;
        const flipped = `${secret.slice(0, i)}${replacement}${secret.slice(i + 1)}`;
        expect(isWellFormedToken(flipped), `position ${i} -> ${replacement}`).toBe(false);
      }
    }
  });

  it("are rejected when swapped, shortened, lengthened, upper-cased or padded", () => {
    const secret = generateSecret();
    const swapped = `${secret.slice(0, 10)}${secret[11]}${secret[10]}${secret.slice(12)}`;
    if (swapped !== secret) expect(isWellFormedToken(swapped)).toBe(false);
    expect(isWellFormedToken(secret.slice(0, -1))).toBe(false);
    expect(isWellFormedToken(`${secret}0`)).toBe(false);
    expect(isWellFormedToken(secret.toUpperCase())).toBe(false);
    expect(isWellFormedToken(` ${secret}`)).toBe(false);
    expect(isWellFormedToken(`${secret}\n`)).toBe(false);
    expect(isWellFormedToken("")).toBe(false);
  });

  it("accept a hand-built token whose checksum is right (the format is all that is checked)", () => {
    const body = `vge_${"0".repeat(64)}`;
    expect(isWellFormedToken(`${body}${crc32(body)}`)).toBe(true);
    expect(isWellFormedToken(`${body}00000000`)).toBe(false);
  });
});

describe("hashSecret", () => {
  it("is SHA-256, as lowercase hex", async () => {
    expect(await hashSecret("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    expect(await hashSecret("")).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const secret = generateSecret();
    const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret)));
    expect(await hashSecret(secret)).toBe(
      Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join(""),
    );
  });
});

describe("createToken", () => {
  it("stores only the hash: the secret appears in no key, value or metadata of TOKENS", async () => {
    const { secret, record } = await createToken(env.TOKENS, {
      name: unique("storage check"),
      scopes: ["users:write:phone_number"],
      domains: ["Example.com"],
      origins: ["https://App.example.com/"],
      expiresAt: new Date(Date.now() + 3_600_000),
    });
    const dump = await dumpTokens();
    const hash = await hashSecret(secret);
    expect(dump).toContain(`token:${hash}`);
    expect(dump).toContain(`token-id:${record.id}`);
    const random = secret.slice(4, 68);
    for (const entry of dump) {
      expect(entry).not.toContain(secret);
      expect(entry).not.toContain(random);
      expect(entry).not.toContain(random.slice(0, 16));
    }
  });

  it("writes the record under token:<sha256> and an index under token-id:<id>", async () => {
    const name = unique("layout");
    const { secret, record } = await createToken(env.TOKENS, { name, scopes: ["users:write"] });
    const hash = await hashSecret(secret);
    expect(await env.TOKENS.get(`token:${hash}`, "json")).toEqual(record);
    expect(record).toMatchObject({ v: 1, name, scopes: ["users:write"] });
    expect(record.id).toMatch(/^tok_[0-9a-f]{16}$/);
    expect(Date.parse(record.created_at)).not.toBeNaN();
    expect(await getTokenById(env.TOKENS, record.id)).toEqual({ ...record, hash });
  });

  it("normalizes domains and origins and drops duplicate scopes", () => {
    const record = buildRecord({
      name: "n",
      scopes: ["users:write", "users:write", "audit:read"],
      domains: ["Example.COM", "example.com", "*.Example.org"],
      origins: ["https://App.Example.com/", "http://localhost:5173"],
    });
    expect(record.scopes).toEqual(["users:write", "audit:read"]);
    expect(record.domains).toEqual(["example.com", "*.example.org"]);
    expect(record.origins).toEqual(["https://app.example.com", "http://localhost:5173"]);
  });

  it.each([
    ["an unknown scope", { scopes: ["users:read"] }],
    ["no scope", { scopes: [] }],
    ["an empty name", { name: "" }],
    ["a name over 100 characters", { name: "n".repeat(101) }],
    ["a domain with a space", { domains: ["exa mple.com"] }],
    ["a domain with a path", { domains: ["example.com/x"] }],
    ["a wildcard in the middle", { domains: ["a.*.example.com"] }],
    ["an origin with a path", { origins: ["https://example.com/app"] }],
    ["an expiry in the past", { expiresAt: new Date(Date.now() - 1000) }],
    ["an expiry under two minutes away", { expiresAt: new Date(Date.now() + 60_000) }],
  ])("refuses %s", (_name, extra) => {
    expect(() => buildRecord({ name: "n", scopes: ["users:write"], ...extra })).toThrow();
  });
});

describe("findToken", () => {
  it("finds a live token, and nothing for a well-formed secret never issued", async () => {
    const { secret, record } = await createToken(env.TOKENS, {
      name: unique("find"),
      scopes: ["audit:read"],
    });
    expect(await findToken(env.TOKENS, secret)).toEqual(record);
    expect(await findToken(env.TOKENS, generateSecret())).toBeNull();
  });

  it("returns nothing once the expiry has passed", async () => {
    const expiresAt = new Date(Date.now() + 10 * 60_000);
    const { secret } = await createToken(env.TOKENS, {
      name: unique("expiry"),
      scopes: ["users:write"],
      expiresAt,
    });
    expect(await findToken(env.TOKENS, secret, expiresAt.getTime() - 1)).not.toBeNull();
    expect(await findToken(env.TOKENS, secret, expiresAt.getTime())).toBeNull();
    expect(await findToken(env.TOKENS, secret, expiresAt.getTime() + 86_400_000)).toBeNull();
  });

  it("lets KV drop an expiring record a minute after it expires", async () => {
    const expiresAt = new Date(Date.now() + 10 * 60_000);
    const { secret } = await createToken(env.TOKENS, {
      name: unique("ttl"),
      scopes: ["users:write"],
      expiresAt,
    });
    const hash = await hashSecret(secret);
    const { keys } = await env.TOKENS.list({ prefix: `token:${hash}` });
    expect(keys).toHaveLength(1);
    expect(keys[0].expiration).toBe(Math.floor(expiresAt.getTime() / 1000) + 60);
  });

  it("throws for a corrupt record instead of treating it as valid", async () => {
    const secret = generateSecret();
    await env.TOKENS.put(
      `token:${await hashSecret(secret)}`,
      JSON.stringify({ v: 1, scopes: ["users:write"] }),
    );
    await expect(findToken(env.TOKENS, secret)).rejects.toThrow();
  });

  it("sees every change of a stored record on the next lookup, though it parses an unchanged one once", async () => {
    const { secret, record } = await createToken(env.TOKENS, {
      name: unique("edit"),
      scopes: ["users:write"],
    });
    const key = `token:${await hashSecret(secret)}`;
    const first = await findToken(env.TOKENS, secret);
    expect(first).toEqual(record);
    expect(await findToken(env.TOKENS, secret)).toBe(first); // same text: the checked record is reused
    expect(Object.isFrozen(first) && Object.isFrozen(first?.scopes)).toBe(true);
    const narrowed = { ...record, scopes: ["audit:read"] };
    await env.TOKENS.put(key, JSON.stringify(narrowed));
    expect(await findToken(env.TOKENS, secret)).toEqual(narrowed);
    await env.TOKENS.put(key, JSON.stringify({ ...record, scopes: ["users:fly"] }));
    await expect(findToken(env.TOKENS, secret)).rejects.toThrow("corrupt token record");
    await env.TOKENS.put(key, "{not json");
    await expect(findToken(env.TOKENS, secret)).rejects.toThrow("corrupt token record");
    await env.TOKENS.delete(key);
    expect(await findToken(env.TOKENS, secret)).toBeNull();
  });
});

describe("listTokens, getTokenById and revokeToken", () => {
  it("list tokens from metadata without their hash or secret", async () => {
    const name = unique("listed");
    const { secret, record } = await createToken(env.TOKENS, {
      name,
      scopes: ["users:write:first_name"],
      expiresAt: new Date(Date.now() + 3_600_000),
    });
    const listed = (await listTokens(env.TOKENS)).filter((t) => t.name === name);
    expect(listed).toEqual([
      {
        id: record.id,
        name,
        scopes: ["users:write:first_name"],
        expires_at: record.expires_at,
        created_at: record.created_at,
        status: "active",
      },
    ]);
    const text = JSON.stringify(listed);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(await hashSecret(secret));
  });

  it("list more than one page", async () => {
    const prefix = unique("many");
    await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        createToken(env.TOKENS, { name: `${prefix} ${i}`, scopes: ["audit:read"] }),
      ),
    );
    const paged = {
      get: env.TOKENS.get.bind(env.TOKENS),
      put: env.TOKENS.put.bind(env.TOKENS),
      delete: env.TOKENS.delete.bind(env.TOKENS),
      // Pages of 5 keys, to walk the cursor.
      list: (options: { prefix: string; cursor?: string }) => env.TOKENS.list({ ...options, limit: 5 }),
    };
    const listed = (await listTokens(paged)).filter((t) => t.name.startsWith(prefix));
    expect(listed).toHaveLength(12);
  });

  it("get a token by id, and nothing for an unknown id", async () => {
    const { record } = await createToken(env.TOKENS, { name: unique("by id"), scopes: ["audit:read"] });
    expect(await getTokenById(env.TOKENS, record.id)).toMatchObject({ id: record.id, name: record.name });
    expect(await getTokenById(env.TOKENS, "tok_0000000000000000")).toBeNull();
  });

  it("revoke by public id: the secret stops working, the index keeps the revocation time", async () => {
    const name = unique("revoked");
    const { secret, record } = await createToken(env.TOKENS, { name, scopes: ["users:write"] });
    const now = new Date("2030-01-02T03:04:05.000Z");
    const revoked = await revokeToken(env.TOKENS, record.id, now);
    expect(revoked).toMatchObject({ id: record.id, revoked_at: now.toISOString() });
    expect(await findToken(env.TOKENS, secret)).toBeNull();
    expect(await env.TOKENS.get(`token:${await hashSecret(secret)}`)).toBeNull();
    expect(await getTokenById(env.TOKENS, record.id)).toMatchObject({ revoked_at: now.toISOString() });
    const [listed] = (await listTokens(env.TOKENS)).filter((t) => t.name === name);
    expect(listed.revoked_at).toBe(now.toISOString());
  });

  it("revoke idempotently, and answer null for an unknown id", async () => {
    const { record } = await createToken(env.TOKENS, { name: unique("twice"), scopes: ["users:write"] });
    const first = await revokeToken(env.TOKENS, record.id, new Date("2030-01-01T00:00:00.000Z"));
    const second = await revokeToken(env.TOKENS, record.id, new Date("2031-01-01T00:00:00.000Z"));
    expect(second?.revoked_at).toBe(first?.revoked_at);
    expect(await revokeToken(env.TOKENS, "tok_ffffffffffffffff")).toBeNull();
  });
});
