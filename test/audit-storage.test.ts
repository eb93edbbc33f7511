import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { maskName, maskPhone } from "../src/audit/mask.ts";
import {
  AUDIT_ID,
  type AuditEntry,
  auditKeys,
  auditMeta,
  expirationFor,
  newAuditId,
  writeEntry,
} from "../src/audit/store.ts";
import worker from "../src/index.ts";
import { normalizeEmail } from "../src/model/email.ts";
import { clip, scrub } from "../src/model/text.ts";
import {
  dumpAudit,
  mintWithId,
  review,
  reviewOne,
  sandboxNetwork,
  uniqueEmail,
  WRITE_CONFIG,
} from "./audit-helpers.ts";
import { expectProblem, patchUser, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

const bytes = (value: unknown) => new TextEncoder().encode(JSON.stringify(value)).length;

describe("key and metadata sizes", () => {
  // 64-character local part, 189-character domain: 254 characters, the longest valid address
  const longest = `${"l".repeat(64)}@${"b".repeat(63)}.${"c".repeat(63)}.${"d".repeat(57)}.com`;

  it("stay within KV's limits at the maximum field sizes", async () => {
    expect(longest).toHaveLength(254);
    expect(normalizeEmail(longest).address).toBe(longest);
    const entry: AuditEntry = {
      v: 1,
      id: newAuditId(),
      request_id: `R${"x".repeat(127)}`,
      time: new Date().toISOString(),
      // the longest actor id: a signed-in user's subject of 128 percent-encoded characters
      token_id: `user:${"%E2".repeat(42)}xx`,
      // 100 characters that JSON escapes to six bytes each, then four-byte characters
      token_name: "\u0001".repeat(60) + "𝔘".repeat(40),
      email: longest,
      fields: ["first_name", "last_name", "phone_number"],
      values_mode: "full",
      origin: `https://${"\u00ff".repeat(4000)}`,
      ip: "\u0002".repeat(200),
      user_agent: "u".repeat(10_000),
      outcome: "rate_limited",
      reason: "server_token_from_browser",
      over_budget: true,
    };
    const meta = auditMeta(entry);
    expect(bytes(meta)).toBeLessThanOrEqual(1024);
    // printable ASCII only: KV carries metadata in an HTTP header
    expect(JSON.stringify(meta)).toMatch(/^[\x20-\x7e]+$/);
    expect(meta.token_name).toBe("?".repeat(100));
    expect(meta.origin).toBe(`https://${"?".repeat(79)}...`);
    for (const key of [
      auditKeys.entry(entry.id),
      auditKeys.byEmail(longest, entry.id),
      auditKeys.outcome(entry.id),
    ]) {
      expect(new TextEncoder().encode(key).length).toBeLessThanOrEqual(512);
    }
    // KV itself (miniflare enforces the same limits) takes them
    await writeEntry(env.AUDIT, entry, WRITE_CONFIG);
    expect((await review({ email: longest })).entries.map((e) => e.id)).toEqual([entry.id]);
  });

  it("clips by encoded bytes, never in the middle of a character", () => {
    expect(clip("short", 10)).toBe("short");
    const cut = clip("𝔘".repeat(50), 20);
    expect(cut).toBe(`${"𝔘".repeat(4)}...`);
    expect(bytes(cut) - 2).toBeLessThanOrEqual(20);
    expect(bytes(clip("\u0001".repeat(50), 20)) - 2).toBeLessThanOrEqual(20);
  });

  it("keeps a string whose JSON fits and cuts one that does not, for any mix of characters", () => {
    const char = fc.oneof(
      fc.constantFrom('"', "\\", "\u0000", "\u001f", "\u007f", "é", "𝔘", "\u2028", "~"),
      fc.string({ minLength: 1, maxLength: 1 }),
    );
    fc.assert(
      fc.property(fc.array(char, { maxLength: 40 }), fc.integer({ min: 3, max: 60 }), (chars, max) => {
        const text = chars.join("");
        const out = clip(text, max);
        if (bytes(text) - 2 <= max) expect(out).toBe(text);
        else {
          expect(out.endsWith("...")).toBe(true);
          expect(text.startsWith(out.slice(0, -3))).toBe(true);
          expect(bytes(out) - 2).toBeLessThanOrEqual(max);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("retention", () => {
  it("sets the expiration from the entry time and AUDIT_RETENTION_DAYS", async () => {
    const email = uniqueEmail();
    const { secret } = await mintWithId(["users:write"]);
    spyUpstream();
    const before = Math.floor(Date.now() / 1000);
    await patchUser(email, { first_name: "Ada" }, secret, { bindings: { AUDIT_RETENTION_DAYS: "2" } });
    const after = Math.ceil(Date.now() / 1000);
    const listed = await env.AUDIT.list({ prefix: auditKeys.byEmail(email) });
    const [key] = listed.keys;
    const id = key.name.slice(-30);
    expect(key.expiration).toBeGreaterThanOrEqual(before + 2 * 86_400);
    expect(key.expiration).toBeLessThanOrEqual(after + 2 * 86_400);
    const outcome = await env.AUDIT.list({ prefix: auditKeys.outcome(id) });
    expect(outcome.keys[0].expiration).toBe(key.expiration);
  });

  it("defaults to 400 days and never goes under KV's 60-second minimum", () => {
    const t = Date.UTC(2026, 0, 1);
    expect(expirationFor(t, 400, t)).toBe(t / 1000 + 400 * 86_400);
    const now = Date.now();
    expect(expirationFor(now - 5 * 86_400_000, 1, now)).toBeGreaterThanOrEqual(Math.ceil(now / 1000) + 60);
  });

  it("refuses a bad AUDIT_RETENTION_DAYS or AUDIT_VALUES with a generic 500, forwarding nothing", async () => {
    const { secret } = await mintWithId(["users:write"]);
    const calls = spyUpstream();
    vi.spyOn(console, "error").mockImplementation(() => {});
    for (const bindings of [
      { AUDIT_RETENTION_DAYS: "0" },
      { AUDIT_RETENTION_DAYS: "1.5" },
      { AUDIT_VALUES: "raw" },
    ]) {
      const res = await patchUser(uniqueEmail(), { first_name: "Ada" }, secret, { bindings });
      const problem = await expectProblem(res, 500, "internal");
      expect(problem.detail).toBe("The service is misconfigured.");
    }
    expect(calls).toHaveLength(0);
  });
});

describe("ids", () => {
  it("are unique, well formed and sort newest first", () => {
    const older = newAuditId(1_000);
    const newer = newAuditId(2_000);
    expect(older).toMatch(AUDIT_ID);
    expect(newer < older).toBe(true);
    const many = new Set(Array.from({ length: 1000 }, () => newAuditId(5)));
    expect(many.size).toBe(1000);
  });
});

describe("masking", () => {
  it("keeps first and last character and length of names, country code and last two digits of phones", () => {
    expect(maskName("Lovelace")).toBe("L******e");
    expect(maskName("Ada")).toBe("A**");
    expect(maskName("Al")).toBe("**");
    expect(maskName("Ωμέγα")).toBe("Ω***α");
    expect(maskPhone("+442071234567")).toBe("+44********67");
    expect(maskPhone("+12025550143")).toBe("+1********43");
    expect(maskPhone("+8613912345678")).toBe("+86*********78");
  });

  // Distinctive values: the scans below would find any of them, whole or as a national number.
  const RAW = {
    first_name: "Quintessaria",
    last_name: "Wolfeschlegelstein",
    phone_number: "+44 20 7946 0321",
  };
  const NEEDLES = [
    "Quintessaria",
    "Wolfeschlegelstein",
    "+442079460321",
    "2079460321",
    "7946 0321",
    "79460321",
  ];

  /** Sends a forwarded change and a field-refused change, returns every AUDIT string of this file. */
  async function recordBoth(mode: string) {
    const email = uniqueEmail(mode);
    const bindings = await sandboxNetwork([email]);
    const { secret } = await mintWithId(["users:write"]);
    const { secret: narrow } = await mintWithId(["users:write:last_name"]);
    const withMode = { ...bindings, AUDIT_VALUES: mode };
    expect((await patchUser(email, RAW, secret, { bindings: withMode })).status).toBe(202);
    expect((await patchUser(email, RAW, narrow, { bindings: withMode })).status).toBe(403);
    const entries = (await review({ email })).entries;
    expect(entries.map((e) => e.outcome)).toEqual(["denied", "accepted"]);
    const details = await Promise.all(entries.map((e) => reviewOne(e.id)));
    const stored = (await dumpAudit()).map((k) => `${k.name}\n${k.metadata}\n${k.value}`).join("\n");
    return { details, stored, email };
  }

  it("masked mode (the default) never stores a raw value, in any key, value or metadata", async () => {
    const { details, stored } = await recordBoth("masked");
    for (const needle of NEEDLES) expect(stored).not.toContain(needle);
    for (const d of details) {
      expect(d.values_mode).toBe("masked");
      expect(d.values).toEqual({
        first_name: "Q**********a",
        last_name: "W****************n",
        phone_number: "+44********21",
      });
    }
  });

  it("full mode stores the normalized values (so the scan above can find them)", async () => {
    const { details, stored } = await recordBoth("full");
    expect(stored).toContain("Quintessaria");
    expect(stored).toContain("+442079460321");
    for (const d of details) {
      expect(d.values).toEqual({
        first_name: "Quintessaria",
        last_name: "Wolfeschlegelstein",
        phone_number: "+442079460321",
      });
    }
  });

  it("none mode stores field names only", async () => {
    const { details, email } = await recordBoth("none");
    for (const d of details) {
      expect(d.values_mode).toBe("none");
      expect(d.values).toBeUndefined();
      expect(d.fields).toEqual(["first_name", "last_name", "phone_number"]);
    }
    // this file's full-mode test stored the raw values too, so only this email's keys are scanned
    const own = (await dumpAudit()).filter((k) => `${k.name}${k.metadata}${k.value}`.includes(email));
    expect(own.length).toBe(6);
    for (const k of own) {
      for (const needle of NEEDLES) expect(`${k.name}${k.metadata}${k.value}`).not.toContain(needle);
    }
  });
});

describe("secrets", () => {
  it("scrub removes token- and JWT-shaped strings and given secrets", () => {
    const token = `vge_${"a".repeat(64)}12345678`;
    expect(scrub(`agent ${token} x`)).toBe("agent [redacted] x");
    expect(scrub("Bearer eyJhbGciOi.eyJzdWIiOiIx.sig-nat_ure")).toBe("Bearer [redacted]");
    expect(scrub("key=abc-secret-key-123", ["abc-secret-key-123"])).toBe("key=[redacted]");
  });

  it("no audit entry ever contains a caller token or the Village key", async () => {
    const email = uniqueEmail("secrets");
    const bindings = await sandboxNetwork([email]);
    const { secret } = await mintWithId(["users:write"]);
    const { secret: narrow } = await mintWithId(["users:write:phone_number"], "narrow");
    const keys = [env.VILLAGE_API_KEY, bindings.VILLAGE_API_KEY ?? ""];
    const sneaky = {
      "User-Agent": `client/1 ${secret} ${keys[1]}`,
      Origin: `https://${secret}.example`,
      "CF-Connecting-IP": narrow,
    };
    const full = { ...bindings, AUDIT_VALUES: "full" };
    // With an Origin, tokens bound to no origin are refused (browsers may not use server tokens):
    // both are recorded as denied, with the sneaky headers scrubbed.
    expect(
      (await patchUser(email, { first_name: "Ada" }, secret, { headers: sneaky, bindings: full })).status,
    ).toBe(403);
    expect(
      (await patchUser(email, { first_name: "Ada" }, narrow, { headers: sneaky, bindings: full })).status,
    ).toBe(403);
    const { Origin: _origin, ...serverSide } = sneaky;
    // A token smuggled in as a value (full mode stores values) or as an unknown key. The
    // core reflects the caller's own input in these responses (202 body, errors[]), so they are
    // sent around the helper's response check; this test is about what the audit trail keeps.
    const raw = async (body: unknown) => {
      const ctx = createExecutionContext();
      const req = new Request(`https://edge.test/users/${email}`, {
        method: "PATCH",
        headers: { ...serverSide, Authorization: `Bearer ${secret}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
      const res = await worker.fetch(req, { ...env, ...full }, ctx);
      await waitOnExecutionContext(ctx);
      return res.status;
    };
    expect(await raw({ first_name: `x ${secret}` })).toBe(202);
    expect(await raw({ [secret]: "x", first_name: "A" })).toBe(400);
    expect(await raw({ first_name: keys[1] })).toBe(202);
    expect((await review({ email })).entries).toHaveLength(5);
    const stored = (await dumpAudit()).map((k) => `${k.name}${k.metadata}${k.value}`).join("\n");
    expect(stored).toContain("[redacted]");
    for (const s of [secret, narrow, ...keys, secret.slice(4, 40)]) expect(stored).not.toContain(s);
  });
});
