import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MAX_JWT_LENGTH } from "../src/auth/jwt.ts";
import { generateSecret, hashSecret, listTokens, revokeToken } from "../src/auth/tokens.ts";
import { captureLogs, expectProblem, mint, type Problem, patchUser, send, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

const CHANGE = { first_name: "Ada" };
const REALM = 'Bearer realm="village-edge"';

/** PATCHes a valid change with the given headers, and no token unless the headers carry one. */
const patchWith = (headers: HeadersInit, path = "/users/ada@example.com") =>
  send(path, {
    method: "PATCH",
    headers: { "Content-Type": "application/json", ...Object.fromEntries(new Headers(headers)) },
    body: JSON.stringify(CHANGE),
  });

/** Revokes the one token of this name (storage is shared by the tests of a file). */
async function revokeByName(name: string): Promise<void> {
  const matching = (await listTokens(env.TOKENS)).filter((t) => t.name === name);
  expect(matching).toHaveLength(1);
  expect(await revokeToken(env.TOKENS, matching[0].id)).toMatchObject({ id: matching[0].id });
}

/** The problem body without its per-request `instance`. */
const withoutInstance = ({ instance: _, ...rest }: Problem) => rest;

describe("a missing token", () => {
  it("gets 401 with a bare challenge and no error code (RFC 6750 §3.1)", async () => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", CHANGE);
    const body = await expectProblem(res, 401, "unauthorized");
    expect(res.headers.get("WWW-Authenticate")).toBe(REALM);
    expect(body.detail).toBe("A bearer token is required.");
    expect(calls).toHaveLength(0);
  });

  it("treats an empty Authorization header as missing", async () => {
    const calls = spyUpstream();
    const res = await patchWith({ Authorization: "" });
    await expectProblem(res, 401, "unauthorized");
    expect(res.headers.get("WWW-Authenticate")).toBe(REALM);
    expect(calls).toHaveLength(0);
  });
});

describe("credentials of another scheme (RFC 6750 §3.1: no bearer credentials)", () => {
  const cases: [string, string][] = [
    ["the Basic scheme", `Basic ${btoa("user:pass")}`],
    ["the Token scheme", "Token vge_abc"],
    ["a lowercase basic scheme", "basic abc"],
    ["a bare token without a scheme (an auth-scheme alone)", "vge_abc"],
  ];
  it.each(cases)("gets 401 with a plain challenge and no error code for %s", async (_name, header) => {
    const calls = spyUpstream();
    const before = await env.AUDIT.list();
    const res = await patchWith({ Authorization: header });
    const body = await expectProblem(res, 401, "unauthorized");
    expect(res.headers.get("WWW-Authenticate")).toBe(REALM);
    expect(body.detail).toBe("A bearer token is required.");
    expect(calls).toHaveLength(0);
    expect((await env.AUDIT.list()).keys).toHaveLength(before.keys.length);
  });
});

describe("a header that is not one bearer credential", () => {
  const cases: [string, string][] = [
    ["scheme without a token", "Bearer"],
    ["scheme and spaces only", "Bearer   "],
    ["two credentials", "Bearer aaaa bbbb"],
    ["two bearer credentials joined by a comma", "Bearer aaaa, Bearer bbbb"],
    ["a non-b64token character", "Bearer abc!def"],
    ["padding in the middle", "Bearer ab=cd"],
  ];
  it.each(cases)("gets 400 invalid_request for %s", async (_name, header) => {
    const calls = spyUpstream();
    const res = await patchWith({ Authorization: header });
    await expectProblem(res, 400, "invalid-request");
    expect(res.headers.get("WWW-Authenticate")).toBe(`${REALM}, error="invalid_request"`);
    expect(calls).toHaveLength(0);
  });

  it("gets 400 invalid_request for two Authorization headers, even with valid tokens", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    const headers = new Headers({ "Content-Type": "application/json" });
    headers.append("Authorization", `Bearer ${token}`);
    headers.append("Authorization", `Bearer ${token}`);
    const res = await send("/users/ada@example.com", {
      method: "PATCH",
      headers,
      body: JSON.stringify(CHANGE),
    });
    await expectProblem(res, 400, "invalid-request");
    expect(res.headers.get("WWW-Authenticate")).toBe(`${REALM}, error="invalid_request"`);
    expect(calls).toHaveLength(0);
  });

  it("gets 400 invalid_request for a token in ?access_token=, alone or beside a valid header", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    const alone = await patchWith({}, `/users/ada@example.com?access_token=${token}`);
    const body = await expectProblem(alone, 400, "invalid-request");
    expect(alone.headers.get("WWW-Authenticate")).toBe(`${REALM}, error="invalid_request"`);
    expect(body.detail).toBe("Tokens are accepted only in the Authorization header.");
    const beside = await patchWith(
      { Authorization: `Bearer ${token}` },
      `/users/ada@example.com?access_token=${token}`,
    );
    await expectProblem(beside, 400, "invalid-request");
    const empty = await patchWith(
      { Authorization: `Bearer ${token}` },
      "/users/ada@example.com?access_token=",
    );
    await expectProblem(empty, 400, "invalid-request");
    expect(calls).toHaveLength(0);
  });
});

describe("a token-like query parameter in any spelling", () => {
  it.each(["?access_token", "?access%5Ftoken=x", "?access_token=%E0%A4%A", "?x=1&access_token=&y"])(
    "%s gets 400 invalid_request, never a 500",
    async (query) => {
      const calls = spyUpstream();
      const token = await mint(["users:write"]);
      const res = await patchWith({ Authorization: `Bearer ${token}` }, `/users/ada@example.com${query}`);
      await expectProblem(res, 400, "invalid-request");
      expect(calls).toHaveLength(0);
    },
  );

  it("does not trip on other, even broken, query strings: the route then refuses them (400)", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    for (const query of ["?%", "?a=%ZZ", "?token=x"]) {
      const res = await patchWith({ Authorization: `Bearer ${token}` }, `/users/ada@example.com${query}`);
      const body = await expectProblem(res, 400, "invalid-request");
      expect(body.detail).toBe("PATCH /users/:email takes no query string.");
    }
    expect(calls).toHaveLength(0);
  });
});

describe("an invalid token", () => {
  /** Flips one hex character so the checksum no longer matches. */
  const flip = (secret: string, at: number) =>
    `${secret.slice(0, at)}${secret[at] === "a" ? "b" : "a"}${secret.slice(at + 1)}`;

  const expectInvalidToken = async (res: Response): Promise<Problem> => {
    const body = await expectProblem(res, 401, "unauthorized");
    expect(res.headers.get("WWW-Authenticate")).toBe(`${REALM}, error="invalid_token"`);
    return body;
  };

  it("answers unknown, malformed, over-long, expired and revoked tokens with the identical 401", async () => {
    const calls = spyUpstream();
    const valid = await mint(["users:write"]);
    const expiring = await mint(["users:write"], { expiresAt: new Date(Date.now() + 5 * 60_000) });
    const revoked = await mint(["users:write"], { name: "revoke me 1" });
    await revokeByName("revoke me 1");

    const presented: [string, string][] = [
      ["unknown (well formed, never issued)", `Bearer ${generateSecret()}`],
      ["bad checksum", `Bearer ${flip(valid, valid.length - 1)}`],
      ["flipped body character", `Bearer ${flip(valid, 10)}`],
      ["too short", `Bearer ${valid.slice(0, -1)}`],
      ["too long", `Bearer ${valid}0`],
      ["uppercase hex", `Bearer ${valid.toUpperCase().replace("VGE_", "vge_")}`],
      ["non-hex", `Bearer vge_${"g".repeat(72)}`],
      ["wrong prefix", `Bearer xyz_${valid.slice(4)}`],
      ["over-long header", `Bearer ${"a".repeat(300)}`],
      // A valid token padded past the cap (room for a JWT): refused before it is parsed or hashed.
      ["valid token in an over-long header", `Bearer${" ".repeat(MAX_JWT_LENGTH + 32)}${valid}`],
      ["revoked", `Bearer ${revoked}`],
    ];
    const bodies = [];
    for (const [name, header] of presented) {
      const res = await patchWith({ Authorization: header });
      expect(res.status, name).toBe(401);
      bodies.push(withoutInstance(await expectInvalidToken(res)));
    }

    // Expired: the record is still in KV (its KV expiration is later); the Worker checks the time.
    vi.spyOn(Date, "now").mockReturnValue(Date.now() + 10 * 60_000);
    const expired = await patchWith({ Authorization: `Bearer ${expiring}` });
    bodies.push(withoutInstance(await expectInvalidToken(expired)));

    for (const body of bodies) expect(body).toEqual(bodies[0]);
    expect(bodies[0]).toEqual({
      type: "urn:village-edge:problem:unauthorized",
      title: "Unauthorized",
      status: 401,
      detail: "The bearer token is invalid, expired or revoked.",
    });
    expect(calls).toHaveLength(0);
  });

  it("accepts the same tokens before they expire or are revoked", async () => {
    const calls = spyUpstream();
    const expiring = await mint(["users:write"], { expiresAt: new Date(Date.now() + 5 * 60_000) });
    const revoked = await mint(["users:write"], { name: "revoke me 2" });
    expect((await patchWith({ Authorization: `Bearer ${expiring}` })).status).toBe(202);
    expect((await patchWith({ Authorization: `Bearer ${revoked}` })).status).toBe(202);
    await revokeByName("revoke me 2");
    await expectInvalidToken(await patchWith({ Authorization: `Bearer ${revoked}` }));
    expect(calls).toHaveLength(2);
  });
});

describe("the bearer scheme", () => {
  it.each(["bearer", "BEARER", "bEaReR"])("is case-insensitive (%s)", async (scheme) => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    const res = await patchWith({ Authorization: `${scheme} ${token}` });
    expect(res.status).toBe(202);
    expect(calls).toHaveLength(1);
  });

  it("allows more than one space before the token", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    const res = await patchWith({ Authorization: `Bearer   ${token}` });
    expect(res.status).toBe(202);
    expect(calls).toHaveLength(1);
  });
});

describe("token storage failures fail closed", () => {
  /** Stores `value` under the hash of a fresh well-formed secret and returns the secret. */
  async function plant(value: string): Promise<string> {
    const secret = generateSecret();
    await env.TOKENS.put(`token:${await hashSecret(secret)}`, value);
    return secret;
  }

  const corrupt: [string, string][] = [
    ["not JSON", "{not json"],
    ["the wrong shape", JSON.stringify({ v: 1, id: "tok_x" })],
    [
      "an unknown scope",
      JSON.stringify({
        v: 1,
        id: "tok_0123456789abcdef",
        name: "n",
        scopes: ["users:write", "admin:everything"],
        created_at: new Date().toISOString(),
      }),
    ],
  ];

  it.each(corrupt)(
    "refuses a corrupt TOKENS record (%s) without forwarding or leaking",
    async (_n, value) => {
      const calls = spyUpstream();
      const logs = captureLogs("error");
      const secret = await plant(value);
      const res = await patchWith({ Authorization: `Bearer ${secret}` });
      const text = await res.clone().text();
      expect(text).not.toMatch(/corrupt|json|scope|tok_/i);
      // Unlike an unknown token, this is the operator's fault: a retryable 503 and a loud log line.
      const body = await expectProblem(res, 503, "service-unavailable");
      expect(body.detail).toBe("Token verification is unavailable; try again later.");
      expect(logs.events()).toContainEqual(expect.objectContaining({ event: "token_lookup_failed" }));
      expect(logs.lines().join("\n")).not.toContain(secret);
      expect(calls).toHaveLength(0);
    },
  );

  it("answers 503 without detail when the TOKENS read fails, and logs the failure", async () => {
    const calls = spyUpstream();
    const logs = captureLogs("error");
    const broken = {
      get: () => Promise.reject(new Error("KV backend exploded at shard-7")),
    } as unknown as KVNamespace;
    const token = await mint(["users:write"]);
    const res = await patchWith({ Authorization: `Bearer ${token}` });
    expect(res.status).toBe(202); // the token works with the real namespace
    calls.length = 0;
    const failed = await send("/users/ada@example.com", {
      method: "PATCH",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify(CHANGE),
      bindings: { TOKENS: broken },
    });
    const body = await expectProblem(failed, 503, "service-unavailable");
    expect(failed.headers.get("Retry-After")).toBe("5");
    expect(body.detail).toBe("Token verification is unavailable; try again later.");
    expect(JSON.stringify(body)).not.toContain("shard-7");
    const events = logs.events();
    expect(events).toContainEqual(expect.objectContaining({ event: "token_lookup_failed", level: "error" }));
    expect(logs.lines().join("\n")).not.toContain(token);
    expect(calls).toHaveLength(0);
  });
});

describe("the token check runs before anything else about the request", () => {
  it("refuses a missing token even for an invalid email or body", async () => {
    const calls = spyUpstream();
    const res = await send("/users/not-an-email", {
      method: "PATCH",
      headers: { "Content-Type": "text/plain" },
      body: "x",
    });
    await expectProblem(res, 401, "unauthorized");
    expect(calls).toHaveLength(0);
  });
});
