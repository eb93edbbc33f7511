import { afterEach, describe, expect, it, vi } from "vitest";
import { expectProblem, mint, patchUser, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

/** A spy that plays these answers in order: a status, "error" (connection failure) or "hang". */
function script(...answers: (number | "error" | "hang")[]) {
  let i = 0;
  return spyUpstream((_call, signal) => {
    const answer = answers[i++];
    if (answer === undefined) throw new Error("more upstream calls than scripted");
    if (answer === "error") throw new TypeError("connection reset");
    if (answer === "hang") {
      return new Promise<Response>((_resolve, reject) => {
        signal?.addEventListener("abort", () => reject(signal.reason));
      });
    }
    return new Response(null, { status: answer });
  });
}

describe("upstream retry", () => {
  it.each([502, 503, 504])("retries once after %i and succeeds", async (status) => {
    const calls = script(status, 201);
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, await mint(["users:write"]));
    expect(res.status).toBe(202);
    expect(calls).toHaveLength(2);
    expect(calls[1]).toEqual(calls[0]);
  });

  it("retries once after a connection error", async () => {
    const calls = script("error", 201);
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, await mint(["users:write"]));
    expect(res.status).toBe(202);
    expect(calls).toHaveLength(2);
  });

  it("gives up after the second failure", async () => {
    const calls = script(503, 503);
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, await mint(["users:write"]));
    await expectProblem(res, 502, "bad-gateway");
    expect(calls).toHaveLength(2);
  });

  it.each([500, 400, 401, 404, 409, 422, 429, 302])("never retries after %i", async (status) => {
    const calls = script(status);
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, await mint(["users:write"]));
    expect(res.status).not.toBe(202);
    expect(calls).toHaveLength(1);
  });

  it("never retries after the deadline passed", async () => {
    const calls = script("hang");
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, await mint(["users:write"]), {
      bindings: { UPSTREAM_TIMEOUT_MS: "300" },
    });
    await expectProblem(res, 504, "gateway-timeout");
    expect(calls).toHaveLength(1);
  });

  it("does not retry when too little of the deadline is left", async () => {
    let i = 0;
    const calls = spyUpstream(async () => {
      i++;
      await new Promise((resolve) => setTimeout(resolve, 250));
      return new Response(null, { status: 503 });
    });
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, await mint(["users:write"]), {
      bindings: { UPSTREAM_TIMEOUT_MS: "600" },
    });
    await expectProblem(res, 502, "bad-gateway");
    expect(calls).toHaveLength(1);
    expect(i).toBe(1);
  });
});
