import { afterEach, describe, expect, it, vi } from "vitest";
import { expectProblem, mint, patchUser, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

const APP = "https://app.example.com";
const OTHER = "https://other.example.com";
const bindings = { ALLOWED_ORIGINS: `${APP},${OTHER}` };

describe("a token bound to origins", () => {
  it("works from one of its origins", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write:first_name"], { origins: [APP, "http://localhost:5173"] });
    for (const origin of [APP, "http://localhost:5173"]) {
      const res = await patchUser("ada@example.com", { first_name: "Ada" }, token, {
        headers: { Origin: origin },
        bindings,
      });
      expect(res.status).toBe(202);
    }
    expect(calls).toHaveLength(2);
  });

  it("is refused (403 insufficient_scope) from any other origin, even an allowed one, or with none", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"], { origins: [APP] });
    const cases: Record<string, string>[] = [
      { Origin: OTHER },
      { Origin: "https://app.example.com.evil.test" },
      { Origin: "https://APP.example.com" },
      { Origin: `${APP}/` },
      { Origin: "null" },
      {},
    ];
    for (const headers of cases) {
      const res = await patchUser("ada@example.com", { first_name: "Ada" }, token, { headers, bindings });
      const body = await expectProblem(res, 403, "forbidden");
      expect(body.detail).toBe("This token may not be used from this origin.");
      expect(res.headers.get("WWW-Authenticate")).toBe(
        'Bearer realm="village-edge", error="insufficient_scope"',
      );
    }
    expect(calls).toHaveLength(0);
  });

  it("keeps its other limits from its origin", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write:first_name"], { origins: [APP], domains: ["example.com"] });
    const opts = { headers: { Origin: APP }, bindings };
    await expectProblem(
      await patchUser("ada@example.com", { last_name: "L" }, token, opts),
      403,
      "forbidden",
    );
    await expectProblem(
      await patchUser("alan@example.org", { first_name: "A" }, token, opts),
      403,
      "forbidden",
    );
    expect(calls).toHaveLength(0);
  });
});

describe("a token without origins", () => {
  it("works for a server (no Origin header)", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    expect((await patchUser("ada@example.com", { first_name: "Ada" }, token, { bindings })).status).toBe(202);
    expect(calls).toHaveLength(1);
  });

  it("is refused from a browser (any Origin header), so a server token pasted into a page does not work", async () => {
    const calls = spyUpstream();
    const token = await mint(["users:write"]);
    for (const origin of [APP, "https://evil.test"]) {
      const res = await patchUser("ada@example.com", { first_name: "Ada" }, token, {
        headers: { Origin: origin },
        bindings,
      });
      const body = await expectProblem(res, 403, "forbidden");
      expect(body.detail).toMatch(/for servers/);
    }
    expect(calls).toHaveLength(0);
  });
});
