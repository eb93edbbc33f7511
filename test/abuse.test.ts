/**
 * Abuse resistance (issue 11): what one credential can cost in KV writes, canonical limiter
 * keys, inert audit text, invisible characters in names, client aborts. Every refused request
 * asserts its status, problem type, that nothing reached Village, and the KV writes it caused.
 * The limiters here are the real ones (`STRICT_*`, limits from wrangler.toml).
 */
import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { printable, printableJson } from "../scripts/lib/printable.ts";
import { inert } from "../src/audit/mask.ts";
import { type AuditEntry, auditKeys } from "../src/audit/store.ts";
import worker from "../src/index.ts";
import { countingAudit, mintWithId, uniqueEmail } from "./audit-helpers.ts";
import { captureLogs, expectProblem, ORIGIN, patchUser, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

/** The documented bound (docs/storage.md): audited refusals a minute per caller, and their writes. */
const REFUSAL_BUDGET = 10;
const WRITES_PER_REFUSAL = 3; // entry:, by-token:, by-email:
const MAX_REFUSAL_WRITES = (REFUSAL_BUDGET + 1) * WRITES_PER_REFUSAL; // + one over_budget entry

const strict = {
  TOKEN_RATE_LIMITER: env.STRICT_TOKEN_RATE_LIMITER,
  PHONE_RATE_LIMITER: env.STRICT_PHONE_RATE_LIMITER,
  REFUSAL_RATE_LIMITER: env.STRICT_REFUSAL_RATE_LIMITER,
  REFUSAL_SUMMARY_LIMITER: env.STRICT_REFUSAL_SUMMARY_LIMITER,
};

/**
 * Rate limit windows are aligned to the wall clock (60 s); a loop may straddle a boundary, so
 * bounds are asserted per window the loop touched, and exact counts when it touched one.
 */
const windowOf = (ms: number) => Math.floor(ms / 60_000);

async function entriesOf(tokenId: string): Promise<AuditEntry[]> {
  const keys = await env.AUDIT.list({ prefix: auditKeys.byToken(tokenId) });
  const out: AuditEntry[] = [];
  for (const key of keys.keys) {
    const entry = await env.AUDIT.get<AuditEntry>(auditKeys.entry(key.name.slice(-30)), "json");
    if (entry) out.push(entry);
  }
  return out;
}

describe("what one credential can cost (issue 11, item 1)", () => {
  it("360 wrong-origin requests with one origin-bound token in a minute: at most 33 audit writes, no 5xx", async () => {
    const calls = spyUpstream();
    const logs = captureLogs("warn");
    const audit = countingAudit();
    const token = await mintWithId(["users:write:first_name"], "public page token", {
      origins: ["https://app.example.com"],
    });
    const bindings = { ...strict, AUDIT: audit.kv };
    const statuses: number[] = [];
    const start = windowOf(Date.now());
    for (let i = 0; i < 360; i++) {
      const before = audit.writes.length;
      const res = await patchUser("ada@example.com", { first_name: "Ada" }, token.secret, {
        headers: { Origin: "https://evil.example.net" },
        bindings,
      });
      statuses.push(res.status);
      if (res.status === 429) {
        await expectProblem(res, 429, "rate-limited");
        expect(audit.writes.length, "a request over the caller limit wrote to KV").toBe(before);
      } else {
        const body = await expectProblem(res, 403, "forbidden");
        expect(body.detail).toBe("This token may not be used from this origin.");
        expect([0, WRITES_PER_REFUSAL]).toContain(audit.writes.length - before);
      }
    }
    const windows = windowOf(Date.now()) - start + 1;
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    expect(calls).toHaveLength(0);
    expect(audit.writes.length).toBeLessThanOrEqual(MAX_REFUSAL_WRITES * windows);
    const entries = await entriesOf(token.id);
    expect(entries.length).toBeLessThanOrEqual((REFUSAL_BUDGET + 1) * windows);
    for (const entry of entries) expect(entry).toMatchObject({ outcome: "denied", reason: "origin" });
    const summaries = entries.filter((e) => e.over_budget);
    expect(summaries.length).toBeLessThanOrEqual(windows);
    const suppressed = logs.events().filter((e) => e.event === "audit_refusal_suppressed");
    expect(suppressed.every((e) => e.reason === "origin" && e.actor === token.id)).toBe(true);
    if (windows === 1) {
      expect(statuses.filter((s) => s === 403)).toHaveLength(300); // TOKEN_RATE_LIMITER: 300 a minute
      expect(statuses.filter((s) => s === 429)).toHaveLength(60);
      expect(audit.writes).toHaveLength(MAX_REFUSAL_WRITES);
      expect(entries).toHaveLength(REFUSAL_BUDGET + 1);
      expect(summaries).toHaveLength(1);
      expect(suppressed).toHaveLength(300 - REFUSAL_BUDGET - 1);
    }
  });

  it("a server token used from a browser: refusals within the budget, then one summary, then logs only", async () => {
    const calls = spyUpstream();
    const logs = captureLogs("warn");
    const audit = countingAudit();
    const token = await mintWithId(["users:write"], "server token");
    const email = uniqueEmail("browser");
    const deltas: number[] = [];
    const start = windowOf(Date.now());
    for (let i = 0; i < 15; i++) {
      const before = audit.writes.length;
      const res = await patchUser(email, { first_name: "Ada" }, token.secret, {
        headers: { Origin: "https://app.example.com" },
        bindings: { ...strict, AUDIT: audit.kv },
      });
      const body = await expectProblem(res, 403, "forbidden");
      expect(body.detail).toMatch(/for servers/);
      deltas.push(audit.writes.length - before);
    }
    expect(calls).toHaveLength(0);
    if (windowOf(Date.now()) === start) {
      expect(deltas).toEqual([...Array(REFUSAL_BUDGET + 1).fill(3), 0, 0, 0, 0]);
      const entries = await entriesOf(token.id);
      expect(entries.map((e) => e.reason)).toEqual(Array(11).fill("server_token_from_browser"));
      expect(entries.filter((e) => e.over_budget)).toHaveLength(1);
      const suppressed = logs.events().filter((e) => e.event === "audit_refusal_suppressed");
      expect(suppressed).toHaveLength(4);
      expect(suppressed[0]).toMatchObject({ reason: "server_token_from_browser", outcome: "denied" });
    } else {
      expect(deltas.reduce((a, b) => a + b, 0)).toBeLessThanOrEqual(2 * MAX_REFUSAL_WRITES);
    }
  });

  it("a mix of changes and refusals costs what docs/storage.md counts, per request, within the bound", async () => {
    const calls = spyUpstream();
    captureLogs("warn");
    const audit = countingAudit();
    const token = await mintWithId(["users:write:first_name"], "mixed");
    const email = uniqueEmail("mixed");
    const kinds: { body: unknown; path?: string; status: number; writes: number[] }[] = [
      { body: { first_name: "Ada" }, status: 202, writes: [4] }, // entry, by-token, by-email, outcome
      { body: { last_name: "L" }, status: 403, writes: [3, 0] }, // field_scope: within budget, or not
      { body: { first_name: "" }, status: 400, writes: [3, 0] }, // validation
      { body: { first_name: "Ada" }, path: "not-an-email", status: 400, writes: [2, 0] }, // no by-email
    ];
    let total = 0;
    const seen: number[] = [];
    const start = windowOf(Date.now());
    for (let i = 0; i < 320; i++) {
      const kind = i % 5 === 0 ? kinds[1 + ((i / 5) % 3)] : kinds[0];
      const before = audit.writes.length;
      const res = await patchUser(kind.path ?? email, kind.body, token.secret, {
        bindings: { ...strict, AUDIT: audit.kv },
      });
      seen.push(res.status);
      const delta = audit.writes.length - before;
      total += delta;
      if (res.status === 429) expect(delta).toBe(0);
      else {
        expect(res.status).toBe(kind.status);
        expect(kind.writes).toContain(delta);
      }
    }
    const windows = windowOf(Date.now()) - start + 1;
    expect(seen.filter((s) => s >= 500)).toEqual([]);
    // the bound: 300 admitted requests a minute, at most 4 writes each (docs/storage.md)
    expect(total).toBeLessThanOrEqual(1200 * windows);
    if (windows === 1) {
      expect(seen.filter((s) => s === 429)).toHaveLength(20);
      const forwarded = seen.filter((s) => s === 202).length;
      expect(calls).toHaveLength(forwarded);
      expect(total).toBeLessThanOrEqual(forwarded * 4 + MAX_REFUSAL_WRITES);
    }
  });
});

describe("limits key on the canonical address (issue 11, item 2)", () => {
  it("case variants of one address are one target for the phone limit; each is forwarded as given", async () => {
    const calls = spyUpstream();
    captureLogs("warn");
    const audit = countingAudit();
    const token = await mintWithId(["users:write"], "phone");
    const local = `phone-${crypto.randomUUID().slice(0, 8)}`;
    const variants = [`${local}@example.com`, `${local.toUpperCase()}@example.com`, `${local}@EXAMPLE.com`];
    const start = windowOf(Date.now());
    for (const [i, email] of variants.entries()) {
      const res = await patchUser(email, { phone_number: `+1202555010${i}` }, token.secret, {
        bindings: { ...strict, AUDIT: audit.kv },
      });
      expect(res.status).toBe(202);
    }
    const before = audit.writes.length;
    const res = await patchUser(
      `${local[0].toUpperCase()}${local.slice(1)}@Example.Com`,
      { phone_number: "+12025550109" },
      token.secret,
      {
        bindings: { ...strict, AUDIT: audit.kv },
      },
    );
    if (windowOf(Date.now()) !== start) return; // the phone window rolled over mid-test: nothing to assert
    await expectProblem(res, 429, "rate-limited");
    expect(res.headers.get("Retry-After")).toBe("60");
    expect(audit.writes.length).toBe(before); // logged, not audited
    expect(before).toBe(12); // three forwarded changes, four writes each
    expect(calls.map((c) => decodeURIComponent(c.url.slice(c.url.lastIndexOf("/") + 1)))).toEqual([
      variants[0],
      variants[1],
      `${local}@example.com`, // the domain is lowercased by validation, the local part kept
    ]);
    const index = await env.AUDIT.list({ prefix: auditKeys.byEmail(variants[1]) });
    expect(index.keys).toHaveLength(3);
    expect(index.keys[0].name.startsWith(`by-email:${local}@example.com:`)).toBe(true);
    const entries = await entriesOf(token.id);
    expect(entries.map((e) => e.email).sort()).toEqual([variants[0], variants[0], variants[1]].sort());
  });
});

describe("inert audit text (issue 11, item 4)", () => {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/;

  it("stores control and bidi characters of headers and token names as escapes", async () => {
    const calls = spyUpstream();
    const audit = countingAudit();
    const token = await mintWithId(["users:write"], "ops\u001b]8;;https://evil.test\u0007name\u202e");
    const ua = "curl\u001b[2K\u001b[1Atoken_id tok_0000000000000000\u0085";
    const email = uniqueEmail("inert");
    // refused (server token from a browser): the Origin copy is kept too
    const refused = await patchUser(email, { first_name: "Ada" }, token.secret, {
      headers: { "User-Agent": ua, Origin: "https://app\u001b[31m.test" },
      bindings: { AUDIT: audit.kv },
    });
    await expectProblem(refused, 403, "forbidden");
    expect(audit.writes).toHaveLength(3);
    const ok = await patchUser(email, { first_name: "Ada" }, token.secret, {
      headers: { "User-Agent": ua, "X-Request-Id": "rid\u0001x" },
      bindings: { AUDIT: audit.kv },
    });
    expect(ok.status).toBe(202);
    expect(calls).toHaveLength(1);
    const entries = await entriesOf(token.id);
    expect(entries).toHaveLength(2);
    for (const entry of entries) {
      for (const value of Object.values(entry)) {
        if (typeof value === "string") expect(value).not.toMatch(UNSAFE);
      }
      expect(entry.user_agent).toBe("curl\\u001b[2K\\u001b[1Atoken_id tok_0000000000000000\\u0085");
      expect(entry.token_name).toBe("ops\\u001b]8;;https://evil.test\\u0007name\\u202e");
    }
    expect(entries.find((e) => e.outcome)?.origin).toBe("https://app\\u001b[31m.test");
    const page = await env.AUDIT.list({ prefix: auditKeys.byToken(token.id) });
    expect(JSON.stringify(page.keys.map((k) => k.metadata))).not.toMatch(UNSAFE);
  });

  it("escapes what the audit CLI prints, JSON included", () => {
    expect(inert("a\u001b[2Kb\u202ec")).toBe("a\\u001b[2Kb\\u202ec");
    expect(printable("tok_1\u001b[1A\u001b[2Ktok_2\u009b\u2066")).toBe(
      "tok_1\\u001b[1A\\u001b[2Ktok_2\\u009b\\u2066",
    );
    const json = printableJson({ user_agent: "x\u0085\u202e\u001b" }, 0);
    expect(json).not.toMatch(UNSAFE);
    expect(JSON.parse(json)).toEqual({ user_agent: "x\u0085\u202e\u001b" });
  });
});

describe("invisible characters in names (issue 11, item 8)", () => {
  const refused: [string, string][] = [
    ["zero-width space", "Ada\u200bLovelace"],
    ["word joiner", "Ada\u2060"],
    ["invisible times", "A\u2062da"],
    ["invisible plus", "A\u2064da"],
    ["BOM inside", "Ad\ufeffa"],
    ["left-to-right mark", "Ada\u200e"],
    ["right-to-left mark", "\u200fAda"],
    ["Arabic letter mark", "Ada\u061c"],
    ["Mongolian vowel separator", "Ada\u180e"],
    ["soft hyphen", "Lo\u00advelace"],
    ["Hangul filler", "Ada\u3164"],
    ["tag character", "Ada\u{e0041}"],
  ];
  it.each(refused)("refuses a %s (400, nothing forwarded, one audited refusal)", async (_name, value) => {
    const calls = spyUpstream();
    const audit = countingAudit();
    const token = await mintWithId(["users:write"]);
    const res = await patchUser(uniqueEmail("name"), { first_name: value }, token.secret, {
      bindings: { AUDIT: audit.kv },
    });
    const body = await expectProblem(res, 400, "validation-failed");
    expect(body.errors).toEqual([
      { field: "first_name", pointer: "/first_name", detail: "Must not contain invisible characters." },
    ]);
    expect(calls).toHaveLength(0);
    expect(audit.writes).toHaveLength(3);
    expect((await entriesOf(token.id))[0]).toMatchObject({ reason: "validation", fields: ["first_name"] });
  });

  it("calls a name of invisible characters only empty", async () => {
    const calls = spyUpstream();
    const token = await mintWithId(["users:write"]);
    for (const value of ["\u200b\u200b", "\u200c", "\u200d\u200c", "\ufe0f", " \u2060 "]) {
      const res = await patchUser(uniqueEmail("name"), { last_name: value }, token.secret);
      const body = await expectProblem(res, 400, "validation-failed");
      expect(body.errors?.[0].detail).toBe("Must not be empty.");
    }
    expect(calls).toHaveLength(0);
  });

  it("accepts ZWNJ and ZWJ (Persian, Indic scripts) and ideographic variation selectors", async () => {
    const calls = spyUpstream();
    const token = await mintWithId(["users:write"]);
    for (const value of ["مهدی\u200cزاده", "क्\u200dष", "葛\u{e0100}城"]) {
      const res = await patchUser(uniqueEmail("name"), { first_name: value }, token.secret);
      expect(res.status).toBe(202);
    }
    expect(calls.map((c) => JSON.parse(c.body).first_name)).toEqual([
      "مهدی\u200cزاده",
      "क्\u200dष",
      "葛\u{e0100}城",
    ]);
  });
});

describe("a client that hangs up mid-body (issue 11, item 7)", () => {
  /** A body stream that yields one chunk and then fails, as when the connection drops. */
  const broken = () =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('{"first_name":"A'));
      },
      pull(controller) {
        controller.error(new Error("Network connection lost."));
      },
    });

  for (const declared of [true, false]) {
    it(`is logged at info as a client abort, not a 500, nothing forwarded or written (${declared ? "with" : "without"} Content-Length)`, async () => {
      const calls = spyUpstream();
      const info = captureLogs("log");
      const errors = captureLogs("error");
      const audit = countingAudit();
      const token = await mintWithId(["users:write"]);
      const headers: Record<string, string> = {
        Authorization: `Bearer ${token.secret}`,
        "Content-Type": "application/json",
      };
      if (declared) headers["Content-Length"] = "64";
      const ctx = createExecutionContext();
      const res = await worker.fetch(
        new Request(`${ORIGIN}/users/ada@example.com`, {
          method: "PATCH",
          headers,
          body: broken(),
          duplex: "half",
        } as RequestInit),
        { ...env, AUDIT: audit.kv },
        ctx,
      );
      await waitOnExecutionContext(ctx);
      const body = await expectProblem(res, 400, "invalid-request");
      expect(body.detail).toBe("The request body could not be read to its end.");
      expect(calls).toHaveLength(0);
      expect(audit.writes).toHaveLength(0);
      expect(errors.events()).toEqual([]);
      expect(info.events()).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ level: "info", event: "client_aborted" }),
          expect.objectContaining({ event: "request", status: 400, reason: "client_aborted" }),
        ]),
      );
    });
  }
});

describe("precise refusals in the logs (issue 12, item 4)", () => {
  it("name the reason and the fields a domain refusal tried, in the access log and the trail", async () => {
    const calls = spyUpstream();
    const logs = captureLogs("log");
    const audit = countingAudit();
    const token = await mintWithId(["users:write"], "org only", { domains: ["example.org"] });
    const res = await patchUser(uniqueEmail("domain"), { first_name: "Ada", last_name: "L" }, token.secret, {
      bindings: { AUDIT: audit.kv },
    });
    await expectProblem(res, 403, "forbidden");
    expect(calls).toHaveLength(0);
    expect(audit.writes).toHaveLength(3);
    expect(logs.events().find((e) => e.event === "request")).toMatchObject({
      outcome: "denied",
      problem: "forbidden",
      reason: "domain",
      fields: ["first_name", "last_name"],
      token_id: token.id,
    });
    expect((await entriesOf(token.id))[0]).toMatchObject({
      outcome: "denied",
      reason: "domain",
      fields: ["first_name", "last_name"],
    });
  });
});
