import { afterEach, describe, expect, it, vi } from "vitest";
import { canTouchDomain, canWriteField, type TokenPrincipal } from "../src/auth/authenticate.ts";
import { expectProblem, mint, patchUser, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

const SCOPE_CHALLENGE = (scope: string) =>
  `Bearer realm="village-edge", error="insufficient_scope", scope="${scope}"`;

describe("scopes", () => {
  it("refuses a token with audit:read only: 403 insufficient_scope, nothing forwarded", async () => {
    const calls = spyUpstream();
    const token = await mint(["audit:read"]);
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, token);
    const body = await expectProblem(res, 403, "forbidden");
    expect(res.headers.get("WWW-Authenticate")).toBe(SCOPE_CHALLENGE("users:write"));
    expect(body.detail).toBe("This token cannot change users.");
    expect(calls).toHaveLength(0);
  });

  it("refuses before reading the body: an audit-only token gets 403 even for a bad body", async () => {
    const calls = spyUpstream();
    const token = await mint(["audit:read"]);
    const res = await patchUser("ada@example.com", "{not json", token);
    await expectProblem(res, 403, "forbidden");
    expect(calls).toHaveLength(0);
  });

  it("accepts users:write for every field", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    const res = await patchUser(
      "ada@example.com",
      { first_name: "Ada", last_name: "Byron", phone_number: "+442071234567" },
      token,
    );
    expect(res.status).toBe(202);
    expect(calls).toHaveLength(1);
  });

  it("combines several field scopes, and audit:read beside them changes nothing", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write:first_name", "users:write:last_name", "audit:read"]);
    const ok = await patchUser("ada@example.com", { first_name: "Ada", last_name: "Byron" }, token);
    expect(ok.status).toBe(202);
    expect(JSON.parse(calls[0].body)).toEqual({ first_name: "Ada", last_name: "Byron" });
    const refused = await patchUser(
      "ada@example.com",
      { first_name: "Ada", phone_number: "+442071234567" },
      token,
    );
    const body = await expectProblem(refused, 403, "forbidden");
    expect(body.detail).toContain("phone_number");
    expect(calls).toHaveLength(1);
  });
});

describe("field-scoped tokens", () => {
  it("may change the field they hold: 202", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write:phone_number"]);
    const res = await patchUser("ada@example.com", { phone_number: "+1 202 555 0143" }, token);
    expect(res.status).toBe(202);
    expect(calls).toHaveLength(1);
    expect(JSON.parse(calls[0].body)).toEqual({ phone_number: "+12025550143" });
  });

  it("may not change another field: 403 naming the scope, nothing forwarded", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write:phone_number"]);
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, token);
    const body = await expectProblem(res, 403, "forbidden");
    expect(res.headers.get("WWW-Authenticate")).toBe(SCOPE_CHALLENGE("users:write:first_name"));
    expect(body.detail).toBe("This token may not change first_name; the whole change was refused.");
    expect(calls).toHaveLength(0);
  });

  it("refuses the WHOLE request when allowed and forbidden fields are mixed: nothing is dropped", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write:phone_number"]);
    const res = await patchUser(
      "ada@example.com",
      { phone_number: "+12025550143", first_name: "Ada", last_name: "Byron" },
      token,
    );
    const body = await expectProblem(res, 403, "forbidden");
    expect(res.headers.get("WWW-Authenticate")).toBe(
      SCOPE_CHALLENGE("users:write:first_name users:write:last_name"),
    );
    expect(body.detail).toBe(
      "This token may not change first_name, last_name; the whole change was refused.",
    );
    expect(calls).toHaveLength(0);
  });

  it("validates the body before the field check, so a bad value in a forbidden field is a 400", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write:phone_number"]);
    const res = await patchUser("ada@example.com", { first_name: "" }, token);
    await expectProblem(res, 400, "validation-failed");
    expect(calls).toHaveLength(0);
  });
});

describe("domain limits over HTTP", () => {
  it("allow an exact domain, in any letter case of the target", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"], { domains: ["example.com"] });
    for (const email of ["a@example.com", "a@EXAMPLE.COM", "a@Example.Com"]) {
      const res = await patchUser(email, { first_name: "A" }, token);
      expect(res.status, email).toBe(202);
    }
    expect(calls.map((c) => new URL(c.url).pathname.split("/").pop())).toEqual([
      "a%40example.com",
      "a%40example.com",
      "a%40example.com",
    ]);
  });

  it("store the token's domains lowercased, so an operator's capitals still match", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"], { domains: ["Example.COM"] });
    expect((await patchUser("a@example.com", { first_name: "A" }, token)).status).toBe(202);
    expect(calls).toHaveLength(1);
  });

  it.each([
    ["a subdomain of an exact domain", "a@mail.example.com"],
    ["another domain", "b@other.com"],
    ["a lookalike suffix", "a@evil-example.com"],
    ["the domain as a prefix", "a@example.com.evil.test"],
  ])("refuse %s with 403 and forward nothing", async (_name, email) => {
    const calls = spyUpstream();
    const token = await mint(["users:write:phone_number"], { domains: ["example.com"] });
    const res = await patchUser(email, { phone_number: "+12025550143" }, token);
    const body = await expectProblem(res, 403, "forbidden");
    expect(res.headers.get("WWW-Authenticate")).toBe(SCOPE_CHALLENGE("users:write"));
    expect(body.detail).toBe("This token may not change users in this email domain.");
    expect(calls).toHaveLength(0);
  });

  it("with *.example.com allow subdomains at any depth, in any case", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"], { domains: ["*.example.com"] });
    for (const email of ["a@mail.example.com", "a@x.y.example.com", "a@MAIL.Example.COM"]) {
      expect((await patchUser(email, { first_name: "A" }, token)).status, email).toBe(202);
    }
    expect(calls).toHaveLength(3);
  });

  it.each([
    ["the apex", "a@example.com"],
    ["a lookalike suffix", "a@evil-example.com"],
    ["a lookalike subdomain", "a@mail.evil-example.com"],
    ["the domain as a prefix", "a@example.com.evil.test"],
    ["a subdomain as a prefix", "a@mail.example.com.evil.test"],
  ])("with *.example.com refuse %s", async (_name, email) => {
    const calls = spyUpstream();
    const token = await mint(["users:write"], { domains: ["*.example.com"] });
    const res = await patchUser(email, { first_name: "A" }, token);
    await expectProblem(res, 403, "forbidden");
    expect(calls).toHaveLength(0);
  });

  it("allow any of several domains", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"], { domains: ["example.com", "*.example.org"] });
    expect((await patchUser("a@example.com", { first_name: "A" }, token)).status).toBe(202);
    expect((await patchUser("a@eu.example.org", { first_name: "A" }, token)).status).toBe(202);
    await expectProblem(await patchUser("a@example.org", { first_name: "A" }, token), 403, "forbidden");
    expect(calls).toHaveLength(2);
  });

  it("are checked before the body: a domain refusal wins over a forbidden field", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write:phone_number"], { domains: ["example.com"] });
    const res = await patchUser("a@other.com", { first_name: "A" }, token);
    const body = await expectProblem(res, 403, "forbidden");
    expect(body.detail).toBe("This token may not change users in this email domain.");
    expect(calls).toHaveLength(0);
  });
});

describe("canTouchDomain and canWriteField", () => {
  const principal = (extra: Partial<TokenPrincipal>): TokenPrincipal => ({
    kind: "token",
    tokenId: "tok_0000000000000000",
    tokenName: "t",
    scopes: ["users:write"],
    ...extra,
  });

  it("allow any domain when the token names none", () => {
    expect(canTouchDomain(principal({}), "anything.test")).toBe(true);
  });

  it("never match an empty domain list entry by accident", () => {
    const p = principal({ domains: ["*.example.com"] });
    expect(canTouchDomain(p, ".example.com")).toBe(false);
    expect(canTouchDomain(p, "example.com")).toBe(false);
    expect(canTouchDomain(p, "xexample.com")).toBe(false);
    expect(canTouchDomain(p, "a.example.com")).toBe(true);
  });

  it("refuse everything for an empty domains list", () => {
    expect(canTouchDomain(principal({ domains: [] }), "example.com")).toBe(false);
  });

  it("grant a field through users:write or its own scope only", () => {
    expect(canWriteField(principal({}), "phone_number")).toBe(true);
    const p = principal({ scopes: ["users:write:first_name", "audit:read"] });
    expect(canWriteField(p, "first_name")).toBe(true);
    expect(canWriteField(p, "last_name")).toBe(false);
    expect(canWriteField(p, "phone_number")).toBe(false);
  });
});
