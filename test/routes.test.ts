import { afterEach, describe, expect, it, vi } from "vitest";
import { expectProblem, mint, send, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

describe("unknown paths", () => {
  it.each([
    ["GET", "/"],
    ["GET", "/nope"],
    ["PATCH", "/"],
    ["PATCH", "/users"],
    ["PATCH", "/users/"],
    ["GET", "/users"],
    ["PATCH", "/api/users/ada@example.com"],
    ["PATCH", "/Users/ada@example.com"],
    ["GET", "/healthz/"],
    ["GET", "/healthz/extra"],
    ["GET", "/HEALTHZ"],
    ["POST", "/networks/x/users/ada@example.com"],
  ])("%s %s -> 404 problem+json, nothing forwarded", async (method, path) => {
    const calls = spyUpstream();
    const res = await send(path, { method });
    const body = await expectProblem(res, 404, "not-found");
    expect(body).toMatchObject({ title: "Not found", detail: "No such route." });
    expect(calls).toHaveLength(0);
  });
});

describe("other methods on known paths", () => {
  // OPTIONS is answered by CORS (test/cors.test.ts).
  it.each(["GET", "POST", "PUT", "DELETE"])(
    "%s /users/:email -> 405 with Allow: PATCH, OPTIONS, before any token check",
    async (method) => {
      const calls = spyUpstream();
      const res = await send("/users/ada@example.com", {
        method,
        body: method === "GET" || method === "OPTIONS" ? undefined : '{"first_name":"Ada"}',
      });
      const body = await expectProblem(res, 405, "method-not-allowed");
      expect(res.headers.get("Allow")).toBe("PATCH, OPTIONS");
      expect(body.detail).toBe("This path accepts PATCH, OPTIONS.");
      expect(calls).toHaveLength(0);
    },
  );

  it("answers 405 even with a valid token", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    const res = await send("/users/ada@example.com", {
      method: "PUT",
      headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
      body: '{"first_name":"Ada"}',
    });
    await expectProblem(res, 405, "method-not-allowed");
    expect(calls).toHaveLength(0);
  });

  it.each(["POST", "PUT", "PATCH", "DELETE"])("%s /healthz -> 405 with Allow: GET, HEAD", async (method) => {
    const calls = spyUpstream();
    const res = await send("/healthz", { method });
    await expectProblem(res, 405, "method-not-allowed");
    expect(res.headers.get("Allow")).toBe("GET, HEAD");
    expect(calls).toHaveLength(0);
  });
});

describe("/healthz", () => {
  it("answers 200 without any binding and without calling Village", async () => {
    const calls = spyUpstream();
    const res = await send("/healthz", {
      bindings: {
        VILLAGE_API_KEY: undefined,
        VILLAGE_NETWORK_ID: undefined,
        VILLAGE_API_BASE: "not a url",
        UPSTREAM_TIMEOUT_MS: "nonsense",
      } as unknown as Partial<Env>,
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({ status: "ok" });
    expect(calls).toHaveLength(0);
  });

  it("answers HEAD with headers and no body", async () => {
    const res = await send("/healthz", { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    expect(await res.text()).toBe("");
  });
});

describe("every response", () => {
  // Cache-Control, nosniff and X-Request-Id on every operation and every refusal: test/standard-headers.test.ts.
  it("echoes a well-formed caller request id, also as the problem's instance", async () => {
    const res = await send("/nope", { headers: { "X-Request-Id": "caller-req.1:2" } });
    expect(res.headers.get("X-Request-Id")).toBe("caller-req.1:2");
    const body = await expectProblem(res, 404, "not-found");
    expect(body.instance).toBe("caller-req.1:2");
  });

  it.each([
    ["too long", "a".repeat(129)],
    ["a space", "a b"],
    ["a leading dash", "-abc"],
    ["non-ASCII", "réq"],
    ["a comma list", "a,b"],
  ])("replaces a caller request id with %s", async (_name, given) => {
    const res = await send("/healthz", { headers: { "X-Request-Id": given } });
    const id = res.headers.get("X-Request-Id");
    expect(id).not.toBe(given);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});
