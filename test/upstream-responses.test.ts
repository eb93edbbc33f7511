import { env } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  captureLogs,
  expectProblem,
  mint,
  patchUser,
  type SendOptions,
  sandboxNetwork,
  spyUpstream,
} from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

/** Put in every upstream body and header: it must never reach a caller. */
const MARKER = `village-upstream-marker-${crypto.randomUUID()}`;

let token: string;
beforeAll(async () => {
  token = await mint(["users:write"]);
});

const change = (options?: SendOptions) => patchUser("ada@example.com", { first_name: "Ada" }, token, options);

/** A Village answer carrying the marker in its body and in headers a careless proxy might copy. */
const villageSays = (status: number, body: BodyInit | null = JSON.stringify({ error: MARKER })) =>
  new Response(body, {
    status,
    headers: {
      "Content-Type": "application/json",
      "X-Village-Debug": MARKER,
      "Set-Cookie": `village=${MARKER}`,
    },
  });

/** Asserts that nothing from Village's answer shows in ours. */
async function expectNoUpstreamLeak(res: Response) {
  expect(res.bodyUsed, "check for leaks before reading the body").toBe(false);
  expect(await res.clone().text()).not.toContain(MARKER);
  expect(JSON.stringify([...res.headers])).not.toContain(MARKER);
  expect(res.headers.get("Set-Cookie")).toBeNull();
  expect(res.headers.get("X-Village-Debug")).toBeNull();
}

describe("Village's status decides the answer (fetch spy)", () => {
  it.each([
    [404, 404, "user-not-found"],
    [400, 422, "village-rejected"],
    [422, 422, "village-rejected"],
    [500, 502, "bad-gateway"],
    [502, 502, "bad-gateway"],
    [503, 502, "bad-gateway"],
    [504, 502, "bad-gateway"],
    [409, 502, "bad-gateway"],
    [429, 502, "bad-gateway"],
    [418, 502, "bad-gateway"],
  ] as const)("Village %i -> %i %s, without its body or headers", async (status, ours, type) => {
    const calls = spyUpstream(() => villageSays(status));
    const warnings = captureLogs("warn");
    const errors = captureLogs("error");
    const res = await change();
    await expectNoUpstreamLeak(res);
    await expectProblem(res, ours, type);
    // 502/503/504 are retried once (test/upstream-retry.test.ts); every other answer is final.
    expect(calls).toHaveLength([502, 503, 504].includes(status) ? 2 : 1);
    expect(warnings.events()).toContainEqual(
      expect.objectContaining({ event: "upstream_failed", upstream_status: status }),
    );
    expect([...warnings.lines(), ...errors.lines()].join("\n")).not.toContain(MARKER);
  });

  it.each([401, 403])(
    "Village %i means our key is wrong: 502 and a loud log without the key",
    async (status) => {
      const calls = spyUpstream(() => villageSays(status));
      const logs = captureLogs("error");
      const res = await change();
      await expectNoUpstreamLeak(res);
      const body = await expectProblem(res, 502, "bad-gateway");
      expect(body.detail).toBe("Village could not take the change; try again later.");
      expect(calls).toHaveLength(1);
      expect(logs.events()).toContainEqual(
        expect.objectContaining({
          level: "error",
          event: "village_key_rejected",
          upstream_status: status,
          request_id: res.headers.get("X-Request-Id"),
        }),
      );
      const lines = logs.lines().join("\n");
      expect(lines).not.toContain(env.VILLAGE_API_KEY);
      expect(lines).not.toContain(token);
      expect(lines).not.toContain(MARKER);
    },
  );

  it.each([301, 302, 303, 307, 308])(
    "a %i redirect is not followed: 502, exactly one call",
    async (status) => {
      for (const location of ["https://evil.test/steal", `${env.VILLAGE_API_BASE}/networks/x/users/y`]) {
        const calls = spyUpstream(() => new Response(MARKER, { status, headers: { Location: location } }));
        const res = await change();
        await expectNoUpstreamLeak(res);
        await expectProblem(res, 502, "bad-gateway");
        expect(res.headers.get("Location")).toBeNull();
        expect(calls).toHaveLength(1);
        expect(calls[0].redirect).toBe("manual");
        vi.restoreAllMocks();
      }
    },
  );

  it("a hang past UPSTREAM_TIMEOUT_MS is a 504, and the upstream call is aborted", async () => {
    let aborted = false;
    const calls = spyUpstream(
      (_call, signal) =>
        new Promise<Response>((_resolve, reject) => {
          signal?.addEventListener("abort", () => {
            aborted = true;
            reject(signal.reason);
          });
        }),
    );
    const res = await change({ bindings: { UPSTREAM_TIMEOUT_MS: "200" } });
    const body = await expectProblem(res, 504, "gateway-timeout");
    expect(body.detail).toBe("Village did not answer in time; the change may or may not apply.");
    expect(aborted).toBe(true);
    expect(calls).toHaveLength(1);
  });

  it("a network error is a 502 without the error's text", async () => {
    const calls = spyUpstream(() => {
      throw new TypeError(`Network connection lost: ${MARKER}`);
    });
    const logs = captureLogs("warn");
    const res = await change();
    await expectNoUpstreamLeak(res);
    await expectProblem(res, 502, "bad-gateway");
    expect(calls).toHaveLength(2); // one retry after a connection error
    expect(logs.events()).toContainEqual(
      expect.objectContaining({ event: "upstream_failed", outcome: "upstream_error" }),
    );
    expect(logs.lines().join("\n")).not.toContain(MARKER);
  });

  it.each([
    ["HTML", "<html><body>queued</body></html>"],
    ["plain text", "OK"],
    ["truncated JSON", '{"status":'],
    ["an empty body", ""],
  ])("a 2xx with %s is still 202, with our own body", async (_name, text) => {
    const calls = spyUpstream(() => villageSays(201, `${text}${MARKER}`));
    const res = await change();
    expect(res.status).toBe(202);
    await expectNoUpstreamLeak(res);
    expect(await res.json()).toMatchObject({ status: "accepted", email: "ada@example.com" });
    expect(calls).toHaveLength(1);
  });

  it("a huge 2xx body is still 202, and is not read to its end", async () => {
    let pulled = 0;
    const chunk = new TextEncoder().encode(MARKER.repeat(1024));
    const huge = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 10_000) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const calls = spyUpstream(() => villageSays(200, huge));
    const res = await change();
    expect(res.status).toBe(202);
    await expectNoUpstreamLeak(res);
    expect(pulled).toBeLessThan(10);
    expect(calls).toHaveLength(1);
  });
});

describe("against the local Village sandbox over real HTTP, one network per test", () => {
  it("maps an unknown user to 404 user-not-found", async () => {
    const net = await sandboxNetwork();
    const res = await patchUser("nobody@example.com", { first_name: "N" }, token, { bindings: net.bindings });
    await expectProblem(res, 404, "user-not-found");
    const received = await net.received();
    expect(received.map((r) => r.status)).toEqual([404]);
  });

  it("maps Village's rejection to 422 without its body", async () => {
    const net = await sandboxNetwork();
    await net.fault({ status: 422, body: JSON.stringify({ error: MARKER }) });
    const res = await change({ bindings: net.bindings });
    await expectNoUpstreamLeak(res);
    await expectProblem(res, 422, "village-rejected");
    expect(await net.received()).toHaveLength(1);
  });

  it("a key Village refuses is a 502 with a loud log that does not carry the key", async () => {
    const net = await sandboxNetwork();
    const wrongKey = `wrong-key-${crypto.randomUUID()}`;
    const logs = captureLogs("error");
    const res = await change({ bindings: { ...net.bindings, VILLAGE_API_KEY: wrongKey } });
    expect(await res.clone().text()).not.toContain(wrongKey);
    await expectProblem(res, 502, "bad-gateway");
    expect(logs.events()).toContainEqual(
      expect.objectContaining({ event: "village_key_rejected", upstream_status: 401 }),
    );
    expect(logs.lines().join("\n")).not.toContain(wrongKey);
    expect((await net.received()).map((r) => r.status)).toEqual([401]);
  });

  it("a 503 with a body, twice, is a 502 without it", async () => {
    const net = await sandboxNetwork();
    const fault = { status: 503, body: MARKER, contentType: "text/plain", headers: { "X-Trace": MARKER } };
    await net.fault(fault);
    await net.fault(fault);
    const res = await change({ bindings: net.bindings });
    await expectNoUpstreamLeak(res);
    await expectProblem(res, 502, "bad-gateway");
    expect(await net.received()).toHaveLength(2);
  });

  it("a single 503 is retried once and the change applies", async () => {
    const net = await sandboxNetwork();
    await net.fault({ status: 503, body: MARKER });
    const res = await change({ bindings: net.bindings });
    expect(res.status).toBe(202);
    expect((await net.received()).map((r) => r.status)).toEqual(["fault:status", 201]);
  });

  it.each([301, 302, 307, 308] as const)(
    "a %i redirect back to Village itself is not followed",
    async (status) => {
      const net = await sandboxNetwork();
      const location = `${env.VILLAGE_API_BASE}/networks/${net.id}/users/grace@example.com`;
      await net.fault({ action: "redirect", status, location });
      const res = await change({ bindings: net.bindings });
      await expectProblem(res, 502, "bad-gateway");
      expect(res.headers.get("Location")).toBeNull();
      // Followed, the redirect would have reached the sandbox a second time and changed grace.
      expect(await net.received()).toHaveLength(1);
    },
  );

  it("a hang past UPSTREAM_TIMEOUT_MS is a 504", async () => {
    const net = await sandboxNetwork();
    await net.fault({ action: "hang" });
    const res = await change({ bindings: { ...net.bindings, UPSTREAM_TIMEOUT_MS: "200" } });
    await expectProblem(res, 504, "gateway-timeout");
    expect(await net.received()).toHaveLength(1);
  });

  it("an answer slower than UPSTREAM_TIMEOUT_MS is a 504", async () => {
    const net = await sandboxNetwork();
    await net.fault({ status: 201, delayMs: 2_000, body: MARKER });
    const res = await change({ bindings: { ...net.bindings, UPSTREAM_TIMEOUT_MS: "200" } });
    await expectProblem(res, 504, "gateway-timeout");
  });

  it("a connection reset, twice, is a 502", async () => {
    const net = await sandboxNetwork();
    await net.fault({ action: "reset" });
    await net.fault({ action: "reset" });
    const res = await change({ bindings: net.bindings });
    await expectProblem(res, 502, "bad-gateway");
    expect(await net.received()).toHaveLength(2);
  });

  it("a single connection reset is retried once and the change applies", async () => {
    const net = await sandboxNetwork();
    await net.fault({ action: "reset" });
    const res = await change({ bindings: net.bindings });
    expect(res.status).toBe(202);
    expect(await net.received()).toHaveLength(2);
  });

  it("a 2xx with a non-JSON body is 202", async () => {
    const net = await sandboxNetwork();
    await net.fault({ status: 200, body: `<html>${MARKER}</html>`, contentType: "text/html" });
    const res = await change({ bindings: net.bindings });
    expect(res.status).toBe(202);
    await expectNoUpstreamLeak(res);
  });

  it("a 2xx with a 5 MB body is 202", async () => {
    const net = await sandboxNetwork();
    await net.fault({ status: 201, bodyBytes: 5 * 1024 * 1024 });
    const res = await change({ bindings: net.bindings });
    expect(res.status).toBe(202);
  });

  it("a 2xx whose body trickles in is 202 (the status decides)", async () => {
    const net = await sandboxNetwork();
    await net.fault({ action: "slow-body", status: 201, chunks: 3, intervalMs: 20 });
    const res = await change({ bindings: net.bindings });
    expect(res.status).toBe(202);
  });

  it("a 2xx whose body trickles past the deadline is cut off there, still 202", async () => {
    // 16 bytes every 100 ms: without the deadline, even the 4 KiB drain cap would take 25 s,
    // longer than the test timeout.
    const net = await sandboxNetwork();
    await net.fault({ action: "slow-body", status: 201, chunks: 1000, intervalMs: 100 });
    const res = await change({ bindings: { ...net.bindings, UPSTREAM_TIMEOUT_MS: "300" } });
    expect(res.status).toBe(202);
  });

  it("the network's key and id are what the sandbox checked (a real 202 changes the user)", async () => {
    const net = await sandboxNetwork();
    const res = await patchUser("alan@example.org", { last_name: "Mathison" }, token, {
      bindings: net.bindings,
    });
    expect(res.status).toBe(202);
    const [received] = await net.received();
    expect(received).toMatchObject({ method: "PATCH", email: "alan@example.org", status: 201 });
    expect(received.headers.authorization).toBe("Bearer <redacted>");
    expect(JSON.parse(received.body)).toEqual({ last_name: "Mathison" });
  });
});
