import { afterEach, describe, expect, it, vi } from "vitest";
import { expectProblem, mint, patchUser, send, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

const APP = "https://app.example.com";
const WIDGET = "http://localhost:5173";
const bindings = { ALLOWED_ORIGINS: ` ${APP}, ${WIDGET} ` };

/** Every `Access-Control-*` header of a response. */
const corsHeaders = (res: Response) =>
  Object.fromEntries([...res.headers].filter(([k]) => k.toLowerCase().startsWith("access-control-")));

const varyOf = (res: Response) => (res.headers.get("Vary") ?? "").split(/\s*,\s*/);

function preflight(
  origin: string | undefined,
  extra: Partial<Env> = bindings,
  path = "/users/ada@example.com",
) {
  const headers: Record<string, string> = {
    "Access-Control-Request-Method": "PATCH",
    "Access-Control-Request-Headers": "authorization,content-type,x-request-id",
  };
  if (origin !== undefined) headers.Origin = origin;
  return send(path, { method: "OPTIONS", headers, bindings: extra });
}

describe("preflight", () => {
  it("from an allowed origin: that origin, PATCH, the three headers, a Max-Age, Vary", async () => {
    const calls = spyUpstream();
    for (const origin of [APP, WIDGET]) {
      const res = await preflight(origin);
      expect(res.status).toBe(204);
      expect(corsHeaders(res)).toEqual({
        "access-control-allow-origin": origin,
        "access-control-allow-methods": "PATCH",
        "access-control-allow-headers": "Authorization, Content-Type, X-Request-Id",
        "access-control-max-age": "600",
        "access-control-expose-headers": "X-Request-Id, Retry-After, WWW-Authenticate",
      });
      expect(varyOf(res)).toEqual(
        expect.arrayContaining(["Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers"]),
      );
      expect(res.headers.get("Access-Control-Allow-Credentials")).toBeNull();
    }
    expect(calls).toHaveLength(0);
  });

  it("from any other origin: no CORS header at all, never another allowed origin, never *", async () => {
    const calls = spyUpstream();
    const strangers = [
      "https://evil.test",
      "https://app.example.com.evil.test",
      "https://evil.app.example.com",
      "http://app.example.com",
      "https://app.example.com:8443",
      "https://APP.example.com",
      "https://app.example.com/",
      `${APP}, ${WIDGET}`,
      "http://localhost:5174",
      "null",
      "",
    ];
    for (const origin of strangers) {
      const res = await preflight(origin);
      await expectProblem(res, 403, "forbidden");
      expect(corsHeaders(res), origin).toEqual({});
      expect(varyOf(res)).toContain("Origin");
    }
    expect(calls).toHaveLength(0);
  });

  it("when no origin is allowed (ALLOWED_ORIGINS empty), refuses every origin", async () => {
    const res = await preflight(APP, { ALLOWED_ORIGINS: "" });
    await expectProblem(res, 403, "forbidden");
    expect(corsHeaders(res)).toEqual({});
  });

  it("only where a CORS route exists", async () => {
    const res = await preflight(APP, bindings, "/users/ada@example.com/extra");
    await expectProblem(res, 404, "not-found");
    const health = await preflight(APP, bindings, "/healthz");
    expect(corsHeaders(health)).toEqual({});
  });
});

describe("OPTIONS and Allow", () => {
  it("answers a plain OPTIONS with Allow", async () => {
    const res = await send("/users/ada@example.com", { method: "OPTIONS", bindings });
    expect(res.status).toBe(204);
    expect(res.headers.get("Allow")).toBe("PATCH, OPTIONS");
    expect(corsHeaders(res)).toEqual({});
  });

  it("lists OPTIONS in the 405's Allow, with CORS headers for an allowed origin", async () => {
    const res = await send("/users/ada@example.com", { method: "GET", headers: { Origin: APP }, bindings });
    await expectProblem(res, 405, "method-not-allowed");
    expect(res.headers.get("Allow")).toBe("PATCH, OPTIONS");
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe(APP);
  });
});

describe("actual requests", () => {
  it("from an allowed origin carry that origin, the exposed headers and Vary: Origin", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"], { origins: [APP] });
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, token, {
      headers: { Origin: APP },
      bindings,
    });
    expect(res.status).toBe(202);
    expect(corsHeaders(res)).toEqual({
      "access-control-allow-origin": APP,
      "access-control-expose-headers": "X-Request-Id, Retry-After, WWW-Authenticate",
    });
    expect(varyOf(res)).toContain("Origin");
    expect(calls).toHaveLength(1);
  });

  it("errors from an allowed origin are readable by the page too", async () => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, undefined, {
      headers: { Origin: APP },
      bindings,
    });
    await expectProblem(res, 401, "unauthorized");
    expect(res.headers.get("Access-Control-Allow-Origin")).toBe(APP);
    expect(calls).toHaveLength(0);
  });

  it("from another origin or with no Origin carry no CORS header, but Vary: Origin", async () => {
    spyUpstream();
    const token = await mint(["users:write"]);
    for (const headers of [{ Origin: "https://evil.test" }, {}] as Record<string, string>[]) {
      const res = await patchUser("ada@example.com", { first_name: "Ada" }, token, { headers, bindings });
      expect(corsHeaders(res)).toEqual({});
      expect(varyOf(res)).toContain("Origin");
    }
  });
});

describe("every answer on /users/* from an allowed origin", () => {
  it("carries that origin, the exposed headers, Vary: Origin and the headers of every response", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write:first_name"], { origins: [APP] });
    const auth = { Authorization: `Bearer ${token}`, Origin: APP };
    const json = { ...auth, "Content-Type": "application/json" };
    const answers: [number, Promise<Response>][] = [
      [
        202,
        patchUser("ada@example.com", { first_name: "Ada" }, token, { headers: { Origin: APP }, bindings }),
      ],
      [400, send("/users/ada@example.com", { method: "PATCH", headers: json, body: "{", bindings })],
      [401, send("/users/ada@example.com", { method: "PATCH", headers: { Origin: APP }, bindings })],
      [
        403,
        send("/users/ada@example.com", {
          method: "PATCH",
          headers: json,
          body: '{"last_name":"L"}',
          bindings,
        }),
      ],
      [404, send("/users/ada@example.com/more", { method: "PATCH", headers: json, body: "{}", bindings })],
      [405, send("/users/ada@example.com", { method: "GET", headers: auth, bindings })],
      [
        413,
        send("/users/ada@example.com", { method: "PATCH", headers: json, body: "x".repeat(9000), bindings }),
      ],
      [415, send("/users/ada@example.com", { method: "PATCH", headers: auth, body: "a=b", bindings })],
    ];
    for (const [status, pending] of answers) {
      const res = await pending;
      expect(res.status, `status ${status}`).toBe(status);
      expect(corsHeaders(res), `status ${status}`).toEqual({
        "access-control-allow-origin": APP,
        "access-control-expose-headers": "X-Request-Id, Retry-After, WWW-Authenticate",
      });
      expect(varyOf(res), `status ${status}`).toEqual(["Origin"]);
      expect(res.headers.get("Cache-Control")).toBe("no-store");
      expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
      expect(res.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(calls).toHaveLength(1);
  });
});

describe("ALLOWED_ORIGINS is checked", () => {
  for (const bad of [
    "*",
    "https://app.example.com/",
    "https://app.example.com/path",
    "http://app.example.com",
    "app.example.com",
    "https://APP.example.com",
  ]) {
    it(`answers 500 for ${JSON.stringify(bad)}`, async () => {
      const calls = spyUpstream();
      const logs: string[] = [];
      vi.spyOn(console, "error").mockImplementation((line: string) => void logs.push(line));
      const res = await preflight(APP, { ALLOWED_ORIGINS: `${WIDGET},${bad}` });
      const body = await expectProblem(res, 500, "internal");
      expect(body.detail).toBe("The service is misconfigured.");
      expect(corsHeaders(res)).toEqual({});
      expect(logs.some((l) => l.includes("ALLOWED_ORIGINS"))).toBe(true);
      expect(calls).toHaveLength(0);
    });
  }
});
