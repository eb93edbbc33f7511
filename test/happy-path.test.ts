import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { mint, patchUser, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

describe("a valid change", () => {
  it("is forwarded as exactly the allowlisted upstream request", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    const res = await patchUser(
      "Ada.L@Example.COM",
      { first_name: "  Ada ", last_name: "Lovelace", phone_number: "+44 20 7123 4567" },
      token,
      { headers: { "X-Request-Id": "req-123", "X-Forwarded-Host": "evil.test", Cookie: "a=b" } },
    );
    expect(res.status).toBe(202);
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call.method).toBe("PATCH");
    expect(call.url).toBe(
      `${env.VILLAGE_API_BASE}/networks/${encodeURIComponent(env.VILLAGE_NETWORK_ID)}/users/Ada.L%40example.com`,
    );
    expect(call.redirect).toBe("manual");
    expect(call.headers).toEqual({
      authorization: `Bearer ${env.VILLAGE_API_KEY}`,
      "content-type": "application/json",
      accept: "application/json",
      "x-request-id": "req-123",
      "user-agent": "village-edge/0.1",
    });
    expect(JSON.parse(call.body)).toEqual({
      first_name: "Ada",
      last_name: "Lovelace",
      phone_number: "+442071234567",
    });
  });

  it("answers 202 with the request id, the normalized email and the normalized changes", async () => {
    spyUpstream();
    const token = await mint(["users:write"]);
    const res = await patchUser("ada@EXAMPLE.com", { phone_number: "+1 (202) 555-0143" }, token);
    expect(res.status).toBe(202);
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    const requestId = res.headers.get("X-Request-Id");
    expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await res.json()).toEqual({
      status: "accepted",
      request_id: requestId,
      email: "ada@example.com",
      changes: { phone_number: "+12025550143" },
    });
  });

  it("accepts any 2xx from Village as queued", async () => {
    for (const status of [200, 201, 202, 204]) {
      spyUpstream(() => new Response(status === 204 ? null : "{}", { status }));
      const token = await mint(["users:write"]);
      const res = await patchUser("ada@example.com", { last_name: "King" }, token);
      expect(res.status).toBe(202);
      vi.restoreAllMocks();
    }
  });

  it("replaces a malformed caller request id with a generated one", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    const res = await patchUser("ada@example.com", { last_name: "King" }, token, {
      headers: { "X-Request-Id": "bad id\twith spaces" },
    });
    const id = res.headers.get("X-Request-Id");
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    expect(calls[0].headers["x-request-id"]).toBe(id);
  });
});

describe("end to end against the local Village sandbox over real HTTP", () => {
  it("changes the user in the sandbox", async () => {
    const token = await mint(["users:write"]);
    const res = await patchUser("grace@example.com", { phone_number: "+1 202 555 0100" }, token);
    expect(res.status).toBe(202);
    const user = await fetch(
      `${env.VILLAGE_API_BASE}/_sandbox/networks/${env.VILLAGE_NETWORK_ID}/users/grace@example.com`,
    );
    expect(await user.json()).toMatchObject({ phone_number: "+12025550100" });
  });

  it("maps the sandbox's 404 for an unknown user", async () => {
    const token = await mint(["users:write"]);
    const res = await patchUser("nobody@example.com", { first_name: "N" }, token);
    expect(res.status).toBe(404);
  });
});

describe("caller request ids", () => {
  it.each([
    ["a token", () => mint(["users:write"])],
    ["a JWT", async () => "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"],
  ])("never echoes %s pasted as X-Request-Id", async (_what, make) => {
    const calls = spyUpstream();
    const pasted = await make();
    const res = await patchUser("ada@example.com", { last_name: "King" }, await mint(["users:write"]), {
      headers: { "X-Request-Id": pasted },
    });
    expect(res.status).toBe(202);
    expect(res.headers.get("X-Request-Id")).not.toBe(pasted);
    expect(calls[0].headers["x-request-id"]).toBe(res.headers.get("X-Request-Id"));
  });
});
