import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { mint, patchUser, send, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

interface Line {
  level: string;
  event: string;
  [field: string]: unknown;
}

/** Captures every console line of the Worker; returns the raw lines and the parsed access lines. */
function captureConsole() {
  const raw: string[] = [];
  for (const method of ["log", "info", "warn", "error", "debug"] as const) {
    vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
      raw.push(args.map(String).join(" "));
    });
  }
  const access = () => raw.map((line) => JSON.parse(line) as Line).filter((line) => line.event === "request");
  return { raw, access };
}

const CHANGE = { first_name: "Augusta", last_name: "Byron-King", phone_number: "+44 20 7946 0321" };
const SECRET_VALUES = ["Augusta", "Byron-King", "7946", "0321", "countess"];

/** No token, key, field value or target address in any line. */
function expectNothingSecret(raw: string[], token?: string) {
  const text = raw.join("\n");
  expect(text).not.toContain(env.VILLAGE_API_KEY);
  if (token) {
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.slice(4, 40));
  }
  for (const value of SECRET_VALUES) expect(text).not.toContain(value);
}

describe("the access log", () => {
  it("writes one line for an accepted change, with ids, route, statuses and latency", async () => {
    spyUpstream();
    const token = await mint(["users:write"]);
    const logs = captureConsole();
    const res = await patchUser("countess@example.com", CHANGE, token);
    expect(res.status).toBe(202);
    const lines = logs.access();
    expect(lines).toHaveLength(1);
    const [line] = lines;
    expect(line).toMatchObject({
      level: "info",
      event: "request",
      request_id: res.headers.get("X-Request-Id"),
      method: "PATCH",
      route: "/users/:email",
      status: 202,
      outcome: "accepted",
      upstream_status: 201,
    });
    expect(line.token_id).toMatch(/^tok_[0-9a-f]{16}$/);
    expect(line.latency_ms).toBeTypeOf("number");
    expect(line.latency_ms as number).toBeGreaterThanOrEqual(0);
    expect(Object.keys(line).sort()).toEqual(
      [
        "event",
        "latency_ms",
        "level",
        "method",
        "outcome",
        "request_id",
        "route",
        "status",
        "token_id",
        "upstream_status",
      ].sort(),
    );
    expectNothingSecret(logs.raw, token);
  });

  it("writes one line for a request without a token, naming the problem and no token id", async () => {
    const calls = spyUpstream();
    const logs = captureConsole();
    const res = await patchUser("countess@example.com", CHANGE);
    expect(res.status).toBe(401);
    expect(calls).toHaveLength(0);
    expect(logs.access()).toEqual([
      expect.objectContaining({
        status: 401,
        outcome: "denied",
        problem: "unauthorized",
        reason: "unauthenticated",
        token_id: null,
        upstream_status: null,
        route: "/users/:email",
      }),
    ]);
    expectNothingSecret(logs.raw);
  });

  it("logs a refused change without the refused values, and a presented bad token nowhere", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    const logs = captureConsole();
    const res = await patchUser("countess@example.com", { ...CHANGE, phone_number: "+44 7946 03" }, token);
    expect(res.status).toBe(400);
    expect(calls).toHaveLength(0);
    expect(logs.access()).toEqual([
      expect.objectContaining({
        status: 400,
        outcome: "invalid",
        problem: "validation-failed",
        reason: "validation",
        fields: ["first_name", "last_name", "phone_number"],
        upstream_status: null,
      }),
    ]);
    expect(logs.access()[0].token_id).toMatch(/^tok_/);
    const wrong = `${token.slice(0, -1)}${token.endsWith("0") ? "1" : "0"}`;
    await patchUser("countess@example.com", CHANGE, wrong);
    expectNothingSecret(logs.raw, token);
    expectNothingSecret(logs.raw, wrong);
  });

  it("logs Village's status and the outcome when Village fails, at error level", async () => {
    spyUpstream(() => new Response("down for the countess", { status: 503 }));
    const token = await mint(["users:write"]);
    const logs = captureConsole();
    const res = await patchUser("countess@example.com", CHANGE, token);
    expect(res.status).toBe(502);
    expect(logs.access()).toEqual([
      expect.objectContaining({
        level: "error",
        status: 502,
        outcome: "upstream_error",
        upstream_status: 503,
      }),
    ]);
    expectNothingSecret(logs.raw, token);
  });

  it("writes one line for other routes, unknown paths and wrong methods too", async () => {
    const logs = captureConsole();
    expect((await send("/healthz")).status).toBe(200);
    expect((await send("/nowhere/countess@example.com")).status).toBe(404);
    expect((await send("/users/countess@example.com", { method: "GET" })).status).toBe(405);
    expect(logs.access()).toEqual([
      expect.objectContaining({ method: "GET", route: "/healthz", status: 200, outcome: "ok" }),
      expect.objectContaining({ route: null, status: 404, outcome: "not-found" }),
      expect.objectContaining({ route: null, status: 405, outcome: "method-not-allowed" }),
    ]);
    expectNothingSecret(logs.raw);
  });
});
