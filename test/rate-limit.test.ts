import { env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { expectProblem, mint, patchUser, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

/** The real limits from wrangler.toml (the rest of the suite runs with relaxed ones). */
const strict = {
  TOKEN_RATE_LIMITER: env.STRICT_TOKEN_RATE_LIMITER,
  PHONE_RATE_LIMITER: env.STRICT_PHONE_RATE_LIMITER,
};

describe("per-email limit on phone changes", () => {
  it("refuses the 4th phone change for one email within a minute, with Retry-After", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    const email = `phone-${crypto.randomUUID()}@example.com`;
    for (let i = 0; i < 3; i++) {
      const ok = await patchUser(email, { phone_number: `+1202555010${i}` }, token, { bindings: strict });
      expect(ok.status).toBe(202);
    }
    const res = await patchUser(email, { phone_number: "+12025550109" }, token, { bindings: strict });
    await expectProblem(res, 429, "rate-limited");
    expect(res.headers.get("Retry-After")).toBe("60");
    expect(calls).toHaveLength(3);
  });

  it("limits per email and only phone changes", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    const email = `names-${crypto.randomUUID()}@example.com`;
    for (let i = 0; i < 3; i++) {
      await patchUser(email, { phone_number: "+12025550100" }, token, { bindings: strict });
    }
    const name = await patchUser(email, { first_name: "Still allowed" }, token, { bindings: strict });
    expect(name.status).toBe(202);
    const other = await patchUser(
      `other-${crypto.randomUUID()}@example.com`,
      { phone_number: "+12025550100" },
      token,
      {
        bindings: strict,
      },
    );
    expect(other.status).toBe(202);
    expect(calls).toHaveLength(5);
  });
});

describe("per-token limit", () => {
  it("refuses a token over its limit before reading the body, other tokens unaffected", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    let refused: Response | undefined;
    // The real per-token limit is in wrangler.toml; send until refused, bounded well above it.
    for (let i = 0; i < 1000 && !refused; i++) {
      const res = await patchUser("ada@example.com", "{not even json", token, { bindings: strict });
      if (res.status === 429) refused = res;
      else expect(res.status).toBe(400);
    }
    expect(refused, "the per-token limit never triggered").toBeDefined();
    if (refused) await expectProblem(refused, 429, "rate-limited");
    const fresh = await patchUser("ada@example.com", { first_name: "Ada" }, await mint(["users:write"]), {
      bindings: strict,
    });
    expect(fresh.status).toBe(202);
    expect(calls).toHaveLength(1);
  });

  it("fails closed when the limiter itself fails", async () => {
    const calls = spyUpstream();
    const broken = { limit: async () => Promise.reject(new Error("limiter down")) } as RateLimit;
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, await mint(["users:write"]), {
      bindings: { TOKEN_RATE_LIMITER: broken },
    });
    await expectProblem(res, 503, "service-unavailable");
    expect(calls).toHaveLength(0);
  });
});
