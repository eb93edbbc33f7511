import { env } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { actorOf, type Principal, userActorId } from "../src/auth/authenticate.ts";
import { createJwksProvider, MIN_REFRESH_MS } from "../src/auth/jwks.ts";
import { createApp } from "../src/index.ts";
import { expectProblem, mint, patchUser } from "./helpers.ts";
import {
  AUDIENCE,
  b64url,
  claimsFor,
  generateKey,
  type JwksAnswer,
  signJwt,
  spyIdpAndUpstream,
  type TestKey,
  userAuthBindings,
} from "./jwt-helpers.ts";

let rsa: TestKey;
let ec: TestKey;
let other: TestKey;

beforeAll(async () => {
  rsa = await generateKey("RS256", "rsa-1");
  ec = await generateKey("ES256", "ec-1");
  other = await generateKey("RS256", "not-published");
});

afterEach(() => vi.restoreAllMocks());

/** Console lines written during a test, to check that no JWT is ever logged. */
function captureLogs(): string[] {
  const lines: string[] = [];
  for (const level of ["log", "warn", "error"] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      lines.push(args.map(String).join(" "));
    });
  }
  return lines;
}

/**
 * One test's IdP: a fresh app (so an empty JWKS cache), a fetch spy, and a sender that checks
 * the JWT never leaks.
 */
function setup(options: { bindings?: Partial<Env>; jwks?: () => JwksAnswer } = {}) {
  const bindings = userAuthBindings(options.bindings);
  const app = createApp({ jwks: createJwksProvider() });
  const spy = spyIdpAndUpstream(
    bindings.AUTH_JWKS_URL,
    options.jwks ?? (() => ({ keys: [rsa.publicJwk, ec.publicJwk] })),
  );
  const logs = captureLogs();
  const patch = async (email: string, body: unknown, jwt: string) => {
    const res = await patchUser(email, body, jwt, { bindings, app });
    const text = await res.clone().text();
    expect(text.includes(jwt), "the JWT leaked into a response").toBe(false);
    expect(
      logs.some((l) => l.includes(jwt)),
      "the JWT leaked into a log line",
    ).toBe(false);
    return res;
  };
  return { ...spy, logs, patch, bindings };
}

describe("a signed-in user", () => {
  it("changes their own record with an RS256 JWT", async () => {
    const { patch, upstream, jwksCalls } = setup();
    const jwt = await signJwt(rsa, claimsFor("ada@example.com"));
    const res = await patch("ada@example.com", { first_name: "Ada", phone_number: "+1 202 555 0100" }, jwt);
    expect(res.status).toBe(202);
    expect(upstream).toHaveLength(1);
    expect(upstream[0].url).toMatch(/\/users\/ada%40example\.com$/);
    expect(JSON.parse(upstream[0].body)).toEqual({ first_name: "Ada", phone_number: "+12025550100" });
    expect(jwksCalls).toHaveLength(1);
  });

  it("changes their own record with an ES256 JWT, and the JWKS is fetched once for both", async () => {
    const { patch, upstream, jwksCalls } = setup();
    for (const key of [ec, rsa, ec]) {
      const res = await patch(
        "ada@example.com",
        { last_name: "King" },
        await signJwt(key, claimsFor("ada@example.com")),
      );
      expect(res.status).toBe(202);
    }
    expect(upstream).toHaveLength(3);
    expect(jwksCalls).toHaveLength(1);
  });

  it("keeps its JWKS per app: a fresh app fetches the same URL again, the first one does not", async () => {
    const { patch, bindings, jwksCalls } = setup();
    const jwt = await signJwt(rsa, claimsFor("ada@example.com"));
    expect((await patch("ada@example.com", { first_name: "A" }, jwt)).status).toBe(202);
    expect(jwksCalls).toHaveLength(1);
    const fresh = createApp({ jwks: createJwksProvider() });
    const res = await patchUser("ada@example.com", { first_name: "A" }, jwt, { bindings, app: fresh });
    expect(res.status).toBe(202);
    expect(jwksCalls).toEqual([bindings.AUTH_JWKS_URL, bindings.AUTH_JWKS_URL]);
    expect((await patch("ada@example.com", { first_name: "A" }, jwt)).status).toBe(202);
    expect(jwksCalls).toHaveLength(2);
  });

  it("is matched after the same normalization as the target (domain case-insensitive, local part exact)", async () => {
    const { patch, upstream } = setup();
    const jwt = await signJwt(rsa, claimsFor("Ada@EXAMPLE.com"));
    expect((await patch("Ada@example.COM", { last_name: "K" }, jwt)).status).toBe(202);
    const other = await patch("ada@example.com", { last_name: "K" }, jwt);
    await expectProblem(other, 403, "forbidden");
    expect(upstream).toHaveLength(1);
  });

  it("accepts an audience array that contains ours, and a JWT expired within the leeway", async () => {
    const { patch, upstream } = setup();
    const now = Math.floor(Date.now() / 1000);
    const a = await signJwt(rsa, claimsFor("ada@example.com", { aud: ["other-api", AUDIENCE] }));
    const b = await signJwt(rsa, claimsFor("ada@example.com", { exp: now - 30 }));
    expect((await patch("ada@example.com", { last_name: "K" }, a)).status).toBe(202);
    expect((await patch("ada@example.com", { last_name: "K" }, b)).status).toBe(202);
    expect(upstream).toHaveLength(2);
  });

  it("is named by its sub as the actor, never by the JWT", async () => {
    const p: Principal = {
      kind: "user",
      subject: "user-42",
      actorId: await userActorId("user-42"),
      email: "ada@example.com",
      fields: ["first_name"],
    };
    expect(actorOf(p)).toEqual({ kind: "user", id: "user:user-42" });
  });
});

describe("distinct subjects are distinct actors (issue 11, item 5)", () => {
  it("hashes long or token-shaped subjects whole, so a common prefix never merges two actors", async () => {
    const prefix = "p".repeat(200);
    const ids = await Promise.all(
      [
        `${prefix}-a`,
        `${prefix}-b`,
        `vge_${"1".repeat(72)}`,
        `vge_${"1".repeat(71)}2`,
        "eyJhbGciOi.eyJzdWIi.sig",
        "ada\u202eevil",
        "short|sub",
        "%sha256-x",
      ].map(userActorId),
    );
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids[0]).toMatch(/^user:%sha256-[0-9a-f]{64}$/);
    expect(ids[2]).toMatch(/^user:%sha256-[0-9a-f]{64}$/);
    expect(ids.join(" ")).not.toMatch(/vge_|eyJ|\u202e/);
    expect(ids[6]).toBe("user:short%7Csub");
    expect(ids[7]).toBe("user:%25sha256-x");
  });

  it("records a change of someone else's record as reason not_self, under the user's actor id", async () => {
    const { patch, upstream } = setup();
    const sub = `someone-${crypto.randomUUID()}`;
    const jwt = await signJwt(rsa, claimsFor("ada@example.com", { sub }));
    await expectProblem(await patch("grace@example.com", { last_name: "H" }, jwt), 403, "forbidden");
    expect(upstream).toHaveLength(0);
    const keys = await env.AUDIT.list({ prefix: `by-token:${await userActorId(sub)}:` });
    expect(keys.keys).toHaveLength(1);
    expect(keys.keys[0].metadata).toMatchObject({
      outcome: "denied",
      reason: "not_self",
      fields: ["last_name"],
    });
  });

  it("gives two long subjects with a common prefix two actors in the trail, its indexes and the logs", async () => {
    const { patch, upstream, logs } = setup();
    const prefix = `auth0|${"x".repeat(190)}`;
    for (const sub of [`${prefix}1`, `${prefix}2`]) {
      const jwt = await signJwt(rsa, claimsFor("ada@example.com", { sub }));
      expect((await patch("ada@example.com", { last_name: "K" }, jwt)).status).toBe(202);
    }
    expect(upstream).toHaveLength(2);
    const actors = [await userActorId(`${prefix}1`), await userActorId(`${prefix}2`)];
    for (const actor of actors) {
      const keys = await env.AUDIT.list({ prefix: `by-token:${actor}:` });
      expect(keys.keys).toHaveLength(1);
    }
    const logged = logs
      .flatMap((line) => {
        try {
          return [JSON.parse(line) as { event?: string; token_id?: string }];
        } catch {
          return [];
        }
      })
      .filter((e) => e.event === "request")
      .map((e) => e.token_id);
    expect(logged.slice(-2)).toEqual(actors);
  });
});

describe("a JWT is refused (401 invalid_token, nothing forwarded)", () => {
  async function expectRefused(
    s: ReturnType<typeof setup>,
    jwt: string,
    reason: string,
    email = "ada@example.com",
  ): Promise<void> {
    const res = await s.patch(email, { first_name: "Mallory" }, jwt);
    await expectProblem(res, 401, "unauthorized");
    expect(res.headers.get("WWW-Authenticate")).toBe('Bearer realm="village-edge", error="invalid_token"');
    expect(s.upstream).toHaveLength(0);
    expect(
      s.logs.some((l) => l.includes(`jwt: ${reason}`)),
      `log names the reason "${reason}"`,
    ).toBe(true);
  }

  it("with alg none, without asking the JWKS", async () => {
    const s = setup();
    const h = b64url(JSON.stringify({ alg: "none", typ: "JWT", kid: rsa.kid }));
    const p = b64url(JSON.stringify(claimsFor("ada@example.com")));
    await expectRefused(s, `${h}.${p}.`, "algorithm not allowed: none");
    await expectRefused(s, `${h}.${p}.${b64url("x")}`, "algorithm not allowed: none");
    expect(s.jwksCalls).toHaveLength(0);
  });

  it("with HS256 signed using the public key as the secret, without asking the JWKS", async () => {
    const s = setup();
    const h = b64url(JSON.stringify({ alg: "HS256", typ: "JWT", kid: rsa.kid }));
    const p = b64url(JSON.stringify(claimsFor("ada@example.com")));
    for (const secret of [JSON.stringify(rsa.publicJwk), rsa.publicJwk.n as string]) {
      const key = await crypto.subtle.importKey(
        "raw",
        new TextEncoder().encode(secret),
        { name: "HMAC", hash: "SHA-256" },
        false,
        ["sign"],
      );
      const sig = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`${h}.${p}`));
      await expectRefused(s, `${h}.${p}.${b64url(new Uint8Array(sig))}`, "algorithm not allowed: HS256");
    }
    expect(s.jwksCalls).toHaveLength(0);
  });

  it("when the header's alg does not match the key's type", async () => {
    const s = setup();
    // Signed by the EC key but claiming RS256 with the EC key's kid, and the reverse.
    const ecAsRs = await signJwt(ec, claimsFor("ada@example.com"), { alg: "RS256" });
    await expectRefused(s, ecAsRs, "key type does not match alg");
    const rsAsEs = (await signJwt(rsa, claimsFor("ada@example.com"), { alg: "ES256" })).replace(
      /\.[^.]+$/,
      `.${b64url(new Uint8Array(64))}`,
    );
    await expectRefused(s, rsAsEs, "key type does not match alg");
  });

  it("when the JWKS pins a different alg for the key, or lists private or symmetric material", async () => {
    const s = setup({
      jwks: () => ({
        keys: [
          { ...rsa.publicJwk, alg: "RS512" },
          { ...ec.publicJwk, d: "c2VjcmV0" },
          { kty: "oct", kid: "hmac", k: b64url("secret"), alg: "HS256" },
        ],
      }),
    });
    await expectRefused(s, await signJwt(rsa, claimsFor("ada@example.com")), "unknown kid");
    await expectRefused(s, await signJwt(ec, claimsFor("ada@example.com")), "unknown kid");
  });

  it("with a bad signature or a changed payload", async () => {
    const s = setup();
    const jwt = await signJwt(rsa, claimsFor("ada@example.com"));
    const [h, , sig] = jwt.split(".");
    const forged = `${h}.${b64url(JSON.stringify(claimsFor("grace@example.com")))}.${sig}`;
    await expectRefused(s, forged, "bad signature", "grace@example.com");
    const signedByOther = await signJwt({ ...other, kid: rsa.kid }, claimsFor("ada@example.com"));
    await expectRefused(s, signedByOther, "bad signature");
  });

  it("with the wrong issuer or audience", async () => {
    const s = setup();
    await expectRefused(
      s,
      await signJwt(rsa, claimsFor("ada@example.com", { iss: "https://idp.test" })),
      "iss mismatch",
    );
    await expectRefused(
      s,
      await signJwt(rsa, claimsFor("ada@example.com", { iss: "https://evil.test/" })),
      "iss mismatch",
    );
    await expectRefused(
      s,
      await signJwt(rsa, claimsFor("ada@example.com", { aud: "other-api" })),
      "aud mismatch",
    );
    await expectRefused(
      s,
      await signJwt(rsa, claimsFor("ada@example.com", { aud: undefined })),
      "aud mismatch",
    );
  });

  it("when expired, not yet valid, or without exp", async () => {
    const s = setup();
    const now = Math.floor(Date.now() / 1000);
    await expectRefused(s, await signJwt(rsa, claimsFor("ada@example.com", { exp: now - 61 })), "expired");
    await expectRefused(
      s,
      await signJwt(rsa, claimsFor("ada@example.com", { nbf: now + 120 })),
      "not yet valid",
    );
    await expectRefused(
      s,
      await signJwt(rsa, claimsFor("ada@example.com", { iat: now + 120 })),
      "issued in the future",
    );
    await expectRefused(s, await signJwt(rsa, claimsFor("ada@example.com", { exp: undefined })), "no exp");
    await expectRefused(
      s,
      await signJwt(rsa, claimsFor("ada@example.com", { exp: String(now + 300) })),
      "no exp",
    );
    await expectRefused(s, await signJwt(rsa, claimsFor("ada@example.com", { sub: "" })), "no usable sub");
  });

  it("with an unknown kid: one JWKS refresh, then 401, and no further refresh for a while", async () => {
    let keys: unknown[] = [rsa.publicJwk];
    const s = setup({ jwks: () => ({ keys }) });
    const start = Date.now();
    const clock = vi.spyOn(Date, "now").mockReturnValue(start);
    expect(
      (await s.patch("ada@example.com", { last_name: "K" }, await signJwt(rsa, claimsFor("ada@example.com"))))
        .status,
    ).toBe(202);
    expect(s.jwksCalls).toHaveLength(1);
    s.upstream.length = 0;

    clock.mockReturnValue(start + MIN_REFRESH_MS);
    await expectRefused(s, await signJwt(other, claimsFor("ada@example.com")), "unknown kid");
    expect(s.jwksCalls).toHaveLength(2);
    // A flood of made-up kids right after does not reach the JWKS.
    for (let i = 0; i < 5; i++) {
      await expectRefused(
        s,
        await signJwt({ ...other, kid: `random-${i}` }, claimsFor("ada@example.com")),
        "unknown kid",
      );
    }
    expect(s.jwksCalls).toHaveLength(2);

    // The provider rotates keys: once the pause is over, the new kid is fetched and accepted.
    keys = [rsa.publicJwk, other.publicJwk];
    clock.mockReturnValue(start + 2 * MIN_REFRESH_MS);
    expect(
      (
        await s.patch(
          "ada@example.com",
          { last_name: "K" },
          await signJwt(other, claimsFor("ada@example.com")),
        )
      ).status,
    ).toBe(202);
    expect(s.jwksCalls).toHaveLength(3);
  });

  it("when end-user sign-in is not configured", async () => {
    const s = setup({ bindings: { AUTH_JWKS_URL: "", AUTH_ISSUER: "", AUTH_AUDIENCE: "" } });
    await expectRefused(
      s,
      await signJwt(rsa, claimsFor("ada@example.com")),
      "end-user sign-in is not configured",
    );
    expect(s.jwksCalls).toHaveLength(0);
  });

  it("when it is not a JWT at all", async () => {
    const s = setup();
    for (const jwt of ["a.b", "a.b.c.d", `${"a".repeat(3000)}.${"b".repeat(2000)}.c`]) {
      const res = await s.patch("ada@example.com", { first_name: "M" }, jwt);
      await expectProblem(res, 401, "unauthorized");
    }
    expect(s.upstream).toHaveLength(0);
    expect(s.jwksCalls).toHaveLength(0);
  });
});

describe("a valid JWT is refused with 403 (nothing forwarded)", () => {
  it("without an email, with an invalid one, or when it is not verified", async () => {
    const s = setup();
    const cases = [
      { email: undefined },
      { email: "not an email" },
      { email: 42 },
      { email_verified: false },
      { email_verified: "false" },
      { email_verified: "true" },
    ];
    for (const extra of cases) {
      const jwt = await signJwt(rsa, claimsFor("ada@example.com", extra));
      const res = await s.patch("ada@example.com", { first_name: "M" }, jwt);
      const body = await expectProblem(res, 403, "forbidden");
      expect(body.detail).toMatch(/verified email/);
      expect(res.headers.get("WWW-Authenticate")).toBe(
        'Bearer realm="village-edge", error="insufficient_scope"',
      );
    }
    // email_verified is optional: absent is fine.
    const ok = await signJwt(rsa, claimsFor("ada@example.com", { email_verified: undefined }));
    expect((await s.patch("ada@example.com", { first_name: "A" }, ok)).status).toBe(202);
    expect(s.upstream).toHaveLength(1);
  });

  it("for another user's record", async () => {
    const s = setup();
    const jwt = await signJwt(rsa, claimsFor("ada@example.com"));
    for (const target of [
      "grace@example.com",
      "ada@example.org",
      "ada%40example.com.evil.test",
      "ada+x@example.com",
    ]) {
      const res = await s.patch(target, { first_name: "M" }, jwt);
      const body = await expectProblem(res, 403, "forbidden");
      expect(body.detail).toBe("You may change only your own record.");
    }
    expect(s.upstream).toHaveLength(0);
  });

  it("for a field outside SELF_SERVICE_FIELDS, the whole change", async () => {
    const s = setup({ bindings: { SELF_SERVICE_FIELDS: "first_name, last_name" } });
    const jwt = await signJwt(rsa, claimsFor("ada@example.com"));
    const res = await s.patch("ada@example.com", { first_name: "Ada", phone_number: "+12025550100" }, jwt);
    const body = await expectProblem(res, 403, "forbidden");
    expect(body.detail).toMatch(/phone_number/);
    expect(s.upstream).toHaveLength(0);
    expect((await s.patch("ada@example.com", { first_name: "Ada", last_name: "L" }, jwt)).status).toBe(202);
    expect(s.upstream).toHaveLength(1);
  });
});

describe("the JWKS cannot be had: 503, never a pass", () => {
  const failures: [string, () => Response | Promise<Response>][] = [
    ["a 500", () => new Response("oops", { status: 500 })],
    [
      "a redirect",
      () => new Response(null, { status: 302, headers: { Location: "https://evil.test/jwks" } }),
    ],
    ["a body that is not JSON", () => new Response("<html>")],
    ["JSON without keys", () => Response.json({ nope: [] })],
    ["an oversized body", () => new Response("x".repeat(70_000))],
    [
      "a network error",
      () => {
        throw new TypeError("Network connection lost.");
      },
    ],
  ];
  for (const [name, answer] of failures) {
    it(`on ${name}`, async () => {
      const s = setup({ jwks: () => answer });
      const res = await s.patch(
        "ada@example.com",
        { first_name: "M" },
        await signJwt(rsa, claimsFor("ada@example.com")),
      );
      await expectProblem(res, 503, "service-unavailable");
      expect(res.headers.get("Retry-After")).toBe("5");
      expect(s.upstream).toHaveLength(0);
      expect(s.logs.some((l) => l.includes('"event":"jwks_unavailable"'))).toBe(true);
    });
  }

  it("on a JWKS that never answers (the fetch deadline ends it)", async () => {
    const s = setup();
    // A JWKS that never answers: the pending fetch ends only when the Worker's deadline aborts it.
    vi.mocked(globalThis.fetch).mockImplementation(async (input, init) => {
      const req = new Request(input, init);
      if (req.url !== s.bindings.AUTH_JWKS_URL) throw new Error(`unexpected outbound fetch to ${req.url}`);
      s.jwksCalls.push(req.url);
      return new Promise<Response>((_, reject) => {
        init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
      });
    });
    const res = await s.patch(
      "ada@example.com",
      { first_name: "M" },
      await signJwt(rsa, claimsFor("ada@example.com")),
    );
    await expectProblem(res, 503, "service-unavailable");
    expect(s.jwksCalls).toHaveLength(1);
    expect(s.upstream).toHaveLength(0);
  });

  it("and after a failure the JWKS is not asked again at once", async () => {
    let down = true;
    const s = setup({
      jwks: () => (down ? () => new Response("down", { status: 503 }) : { keys: [rsa.publicJwk] }),
    });
    const jwt = await signJwt(rsa, claimsFor("ada@example.com"));
    await expectProblem(
      await s.patch("ada@example.com", { first_name: "M" }, jwt),
      503,
      "service-unavailable",
    );
    down = false;
    await expectProblem(
      await s.patch("ada@example.com", { first_name: "M" }, jwt),
      503,
      "service-unavailable",
    );
    expect(s.jwksCalls).toHaveLength(1);
    vi.spyOn(Date, "now").mockReturnValue(Date.now() + 5_000);
    expect((await s.patch("ada@example.com", { first_name: "A" }, jwt)).status).toBe(202);
    expect(s.jwksCalls).toHaveLength(2);
  });
});

describe("configuration", () => {
  it("answers 500 (generic body) when only some AUTH_* are set, for every caller", async () => {
    const s = setup({ bindings: { AUTH_AUDIENCE: "" } });
    const token = await mint(["users:write"]);
    const res = await patchUser("ada@example.com", { first_name: "A" }, token, { bindings: s.bindings });
    const body = await expectProblem(res, 500, "internal");
    expect(body.detail).toBe("The service is misconfigured.");
    expect(s.logs.some((l) => l.includes("AUTH_JWKS_URL/AUTH_ISSUER/AUTH_AUDIENCE"))).toBe(true);
    expect(s.upstream).toHaveLength(0);
  });

  it("answers 500 for an unknown SELF_SERVICE_FIELDS entry or a plain-http JWKS URL", async () => {
    for (const bindings of [
      { SELF_SERVICE_FIELDS: "first_name,email" },
      { AUTH_JWKS_URL: "http://idp.test/jwks.json" },
    ]) {
      const s = setup({ bindings });
      const res = await s.patch(
        "ada@example.com",
        { first_name: "A" },
        await signJwt(rsa, claimsFor("ada@example.com")),
      );
      await expectProblem(res, 500, "internal");
      expect(s.upstream).toHaveLength(0);
      vi.restoreAllMocks();
    }
  });

  it("keeps opaque tokens working alongside JWTs", async () => {
    const s = setup();
    const token = await mint(["users:write"]);
    const res = await patchUser("grace@example.com", { first_name: "G" }, token, { bindings: s.bindings });
    expect(res.status).toBe(202);
    expect(s.jwksCalls).toHaveLength(0);
  });
});
