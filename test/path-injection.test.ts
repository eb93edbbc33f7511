import { env } from "cloudflare:test";
import fc from "fast-check";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { Config } from "../src/config.ts";
import { ProblemError } from "../src/http/errors.ts";
import { buildUpstreamRequest } from "../src/users/upstream.ts";
import { expectProblem, mint, ORIGIN, send, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

let token: string;
beforeAll(async () => {
  token = await mint(["users:write"]);
});

const CHANGE = { first_name: "Ada" };

/** PATCHes a valid change to a raw path (appended to the origin exactly as written). */
const patchPath = (path: string) =>
  send(path, {
    method: "PATCH",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
    body: JSON.stringify(CHANGE),
  });

describe("hostile paths are refused, never a 500, never forwarded", () => {
  const cases: [string, string, 400 | 404, string?][] = [
    ["encoded slash", "/users/ada%2F@example.com", 400],
    ["encoded slash, lowercase", "/users/ada%2f..%2f..%2fadmin@example.com", 400],
    [
      "encoded slashes climbing to another network",
      "/users/..%2F..%2Fnetworks%2Fother%2Fusers%2Fv@x.com",
      400,
    ],
    ["encoded slash after the address", "/users/ada@example.com%2F..%2F..%2Fadmin", 400],
    ["dot-dot", "/users/..", 404],
    ["dot-dot back into users", "/users/../users/", 404],
    ["encoded dot-dot", "/users/%2e%2e", 404],
    ["encoded dot-dot, uppercase", "/users/%2E%2E/x@example.com", 404],
    ["encoded dot", "/users/%2e", 404],
    ["dots in the local part", "/users/a%2e%2e@example.com", 400],
    ["encoded backslash", "/users/ada%5C@example.com", 400],
    ["encoded backslash climbing", "/users/..%5C..%5Cadmin@example.com", 400],
    ["raw backslash (becomes a slash)", "/users/ada\\@example.com", 404],
    ["encoded question mark", "/users/ada%3Fx=1@example.com", 400],
    ["raw question mark (starts a query: refused)", "/users/ada?@example.com", 400, "invalid-request"],
    ["encoded hash", "/users/ada%23x@example.com", 400],
    ["raw hash (starts a fragment: refused)", "/users/ada#@example.com", 400, "invalid-request"],
    ["CR LF", "/users/ada%0d%0aX-Injected:%201@example.com", 400],
    ["LF alone", "/users/ada%0a@example.com", 400],
    ["NUL", "/users/ada%00@example.com", 400],
    ["NUL at the end", "/users/ada@example.com%00", 400],
    ["double-encoded slash", "/users/ada%252F@example.com", 400],
    ["double-encoded at sign", "/users/ada%2540example.com", 400],
    ["double-encoded dot-dot", "/users/%252e%252e%252f@example.com", 400],
    ["truncated multi-byte escape", "/users/ada%E0%A4%A@example.com", 400],
    ["a lone percent", "/users/ada%@example.com", 400],
    ["a percent at the end", "/users/ada@example.com%", 400],
    ["a non-hex escape", "/users/ada%zz@example.com", 400],
    ["an overlong UTF-8 slash", "/users/ada%C0%AF@example.com", 400],
    ["an encoded surrogate", "/users/ada%ED%A0%80@example.com", 400],
    ["a semicolon parameter", "/users/ada@example.com;x=1", 400],
    ["an encoded space at the end", "/users/ada@example.com%20", 400],
    ["a far too long segment", `/users/${"a".repeat(800)}@example.com`, 400],
    ["trailing slash", "/users/ada@example.com/", 404],
    ["extra segment", "/users/ada@example.com/extra", 404],
    ["slash in the local part", "/users/a/b@example.com", 404],
    ["empty segment", "/users/", 404],
    ["no segment", "/users", 404],
    ["double slash before", "/users//ada@example.com", 404],
    ["double slash at the root", "//users/ada@example.com", 404],
    ["upper-case route", "/USERS/ada@example.com", 404],
  ];

  it.each(cases)("%s: %s -> %i", async (_name, path, status, type) => {
    const calls = spyUpstream();
    const res = await patchPath(path);
    await expectProblem(res, status, type ?? (status === 400 ? "invalid-email" : "not-found"));
    expect(calls).toHaveLength(0);
  });

  it("accepts the @ encoded as %40 and forwards the address encoded once", async () => {
    const calls = spyUpstream();
    const res = await patchPath("/users/ada%40EXAMPLE.com");
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ email: "ada@example.com" });
    expect(calls).toHaveLength(1);
    expect(new URL(calls[0].url).pathname).toBe(
      `/networks/${encodeURIComponent(env.VILLAGE_NETWORK_ID)}/users/ada%40example.com`,
    );
  });
});

describe("nothing but the validated email comes from the caller's URL", () => {
  it("refuses a query string or a fragment (400), forwarding and writing nothing", async () => {
    const calls = spyUpstream();
    const before = await env.AUDIT.list();
    for (const path of [
      "/users/ada@example.com?network=other&x=%2F..#frag",
      "/users/ada@example.com?",
      "/users/ada@example.com#frag",
      // what `Host: x/users/b@other.com?` makes of a request for a@example.com under wrangler dev
      "/users/b@other.com?/users/a@example.com",
    ]) {
      const res = await patchPath(path);
      const body = await expectProblem(res, 400, "invalid-request");
      expect(body.detail).toBe("PATCH /users/:email takes no query string.");
    }
    expect(calls).toHaveLength(0);
    expect((await env.AUDIT.list()).keys).toHaveLength(before.keys.length);
  });

  it("forwards the validated email only", async () => {
    const calls = spyUpstream();
    const res = await patchPath("/users/ada@example.com");
    expect(res.status).toBe(202);
    const url = new URL(calls[0].url);
    expect(url.search).toBe("");
    expect(url.pathname).toBe(
      `/networks/${encodeURIComponent(env.VILLAGE_NETWORK_ID)}/users/ada%40example.com`,
    );
  });
});

describe("the shape check before sending", () => {
  const config = (over: Partial<Config>): Config => ({
    villageBase: "https://app.villagelabs.net",
    villageOrigin: "https://app.villagelabs.net",
    villageNetworkId: "net-1",
    villageApiKey: "k",
    upstreamTimeoutMs: 1000,
    userAuth: null,
    auditValues: "masked",
    auditRetentionDays: 400,
    auditSigningKey: { kid: "t", secret: btoa("k".repeat(32)) },
    ...over,
  });

  it("builds the exact URL for a good configuration", () => {
    const req = buildUpstreamRequest(config({}), "a+b@example.com", { first_name: "A" }, "r1");
    expect(req.url).toBe("https://app.villagelabs.net/networks/net-1/users/a%2Bb%40example.com");
  });

  it.each([
    ["a network id that is a dot segment", { villageNetworkId: ".." }],
    ["a network id that is a single dot", { villageNetworkId: "." }],
    ["an origin that does not match the base", { villageOrigin: "https://other.test" }],
  ])("fails closed for %s that slipped past configuration", (_name, over) => {
    expect(() => buildUpstreamRequest(config(over), "a@example.com", { first_name: "A" }, "r1")).toThrow(
      ProblemError,
    );
  });

  it.each([".", ".."])(
    "refuses an email %j that is a dot segment, should validation ever let it by",
    (email) => {
      expect(() => buildUpstreamRequest(config({}), email, { first_name: "A" }, "r1")).toThrow(ProblemError);
    },
  );

  it.each(["a/b@example.com", "a@example.com/../x", "a?b#c@example.com", "..@example.com"])(
    "keeps an email %j that validation would refuse in one segment",
    (email) => {
      const path = new URL(buildUpstreamRequest(config({}), email, { first_name: "A" }, "r1").url).pathname;
      expect(path.split("/")).toHaveLength(5);
      expect(decodeURIComponent(path.split("/")[4])).toBe(email);
    },
  );
});

describe("property: a path either is refused or becomes exactly one well-shaped upstream URL", () => {
  const base = new URL(env.VILLAGE_API_BASE);
  const basePath = base.pathname.replace(/\/+$/, "");
  const networkSegment = encodeURIComponent(env.VILLAGE_NETWORK_ID);

  /** What the Worker should have validated: the path segment decoded once, domain lowercased. */
  function expectedEmail(raw: string): string | undefined {
    const path = new URL(`${ORIGIN}/users/${raw}`).pathname;
    if (!path.startsWith("/users/")) return undefined;
    const decoded = decodeURIComponent(path.slice("/users/".length));
    const at = decoded.lastIndexOf("@");
    return `${decoded.slice(0, at)}@${decoded.slice(at + 1).toLowerCase()}`;
  }

  /** Sends PATCH /users/<raw> and checks the property; returns whether it was accepted. */
  async function check(calls: { url: string; body: string; method: string }[], raw: string) {
    calls.length = 0;
    const res = await patchPath(`/users/${raw}`);
    if (res.status !== 202) {
      expect([400, 404, 405], `status for ${JSON.stringify(raw)}`).toContain(res.status);
      expect(res.headers.get("Content-Type")).toBe("application/problem+json");
      expect(calls, `forwarded ${JSON.stringify(raw)}`).toHaveLength(0);
      return false;
    }
    const { email } = (await res.json()) as { email: string };
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call.method).toBe("PATCH");
    expect(JSON.parse(call.body)).toEqual(CHANGE);
    const url = new URL(call.url);
    expect(url.origin).toBe(base.origin);
    expect(url.search).toBe("");
    expect(url.hash).toBe("");
    expect(url.pathname.startsWith(`${basePath}/networks/${networkSegment}/users/`)).toBe(true);
    const last = url.pathname.slice(`${basePath}/networks/${networkSegment}/users/`.length);
    expect(last).not.toBe("");
    expect(last).not.toContain("/");
    expect(last).toBe(encodeURIComponent(email));
    expect(decodeURIComponent(last)).toBe(email);
    expect(email).toBe(expectedEmail(raw));
    return true;
  }

  /** Characters that have meaning in a path, a URL or an address. */
  const hostile = fc.constantFrom(
    ..."@./\\?#%&;=+:,'\"<>`{}|^~!$*()[] \t\r\n\u0000\u007f".split(""),
    "%2F",
    "%2f",
    "%5C",
    "%3F",
    "%23",
    "%40",
    "%25",
    "%2e",
    "%00",
    "%0d%0a",
    "%252F",
    "%E0%A4%A",
    "..",
    "é",
    "\u202e",
    "😀",
  );
  const emailLike = fc
    .tuple(
      fc.array(fc.oneof({ arbitrary: fc.constantFrom("a", "B", "z9", "_", "-"), weight: 6 }, hostile), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.array(
        fc.oneof({ arbitrary: fc.constantFrom("example", "COM", "a-b", "xn--p1ai"), weight: 8 }, hostile),
        {
          minLength: 1,
          maxLength: 5,
        },
      ),
      fc.constantFrom(".com", ".ORG", ".x", ""),
    )
    .map(([local, domain, tld]) => `${local.join("")}@${domain.join("")}${tld}`);

  /** Addresses this service accepts, with the domain in mixed case. */
  const address = fc
    .tuple(
      fc.array(fc.stringMatching(/^[A-Za-z0-9!$&'*+=^_`{|}~-]{1,10}$/), { minLength: 1, maxLength: 3 }),
      fc.array(fc.stringMatching(/^[A-Za-z0-9](?:[A-Za-z0-9-]{0,8}[A-Za-z0-9])?$/), {
        minLength: 1,
        maxLength: 3,
      }),
      fc.stringMatching(/^[A-Za-z]{2,6}$/),
    )
    .map(([local, labels, tld]) => `${local.join(".")}@${[...labels, tld].join(".")}`);

  const pctEncode = (ch: string) =>
    encodeURIComponent(ch) === ch
      ? `%${ch.charCodeAt(0).toString(16).padStart(2, "0")}`
      : encodeURIComponent(ch);

  /** Percent-encodes characters of a string at random; half the time one of them twice. */
  const randomlyEncoded = (s: fc.Arbitrary<string>) =>
    s.chain((text) =>
      fc
        .tuple(
          fc.array(fc.boolean(), { minLength: text.length, maxLength: text.length }),
          fc.boolean(),
          fc.nat(),
        )
        .map(([encode, twice, at]) =>
          [...text]
            .map((ch, i) => {
              if (twice && i === at % text.length) return pctEncode(ch).replace(/%/g, "%25");
              return encode[i] ? pctEncode(ch) : ch;
            })
            .join(""),
        ),
    );

  const run = (arb: fc.Arbitrary<string>, minAccepted = 0) =>
    async function property() {
      const calls = spyUpstream();
      let accepted = 0;
      await fc.assert(
        fc.asyncProperty(arb, async (raw) => {
          if (await check(calls, raw)) accepted++;
        }),
        { numRuns: 200 },
      );
      // The property must also exercise the accepting branch, not only refusals.
      expect(accepted).toBeGreaterThanOrEqual(minAccepted);
    };

  it("holds for arbitrary strings", run(fc.string({ unit: "binary", maxLength: 80 })));

  it("holds for email-like strings made of hostile pieces", run(emailLike, 10));

  it(
    "holds for real addresses, percent-encoded at random (some twice)",
    run(randomlyEncoded(fc.oneof(address, fc.emailAddress())), 20),
  );
});
