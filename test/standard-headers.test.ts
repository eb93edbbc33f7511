/**
 * The standard headers (Cache-Control: no-store, X-Content-Type-Options: nosniff, X-Request-Id,
 * and Vary/CORS under /users/*) on every answer of every operation the contract documents
 * (src/meta/openapi.json, walked: a new operation joins by being documented), plus 404, 405,
 * HEAD and OPTIONS. Each answer must also come from src/http/respond.ts: the guard middleware
 * that repairs any other response logs `response_headers_added`, and that fails the walk.
 */
import { Hono } from "hono";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ProblemError } from "../src/http/errors.ts";
import { respondJson } from "../src/http/respond.ts";
import { withMiddleware } from "../src/index.ts";
import document from "../src/meta/openapi.json";
import { mint, ORIGIN, patchUser, type SendOptions, send, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

const BROWSER = "https://app.example";
const CORS = { ALLOWED_ORIGINS: BROWSER } satisfies Partial<Env>;
const REQUEST_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface Operation {
  path: string;
  method: string;
  scopes: string[] | undefined;
  body: unknown;
}

/** Every operation of the published contract. */
const OPERATIONS: Operation[] = Object.entries(document.paths).flatMap(([path, item]) =>
  Object.entries(item as Record<string, Record<string, unknown>>).map(([method, op]) => {
    const security = op.security as { bearerToken?: string[] }[] | undefined;
    const content = (
      op.requestBody as { content?: Record<string, { examples?: Record<string, { value: unknown }> }> }
    )?.content?.["application/json"];
    return {
      path,
      method: method.toUpperCase(),
      scopes: security?.length ? security[0].bearerToken : undefined,
      body: content ? (Object.values(content.examples ?? {})[0]?.value ?? {}) : undefined,
    };
  }),
);

/** A concrete path for a templated one. */
const concrete = (path: string) =>
  path.replace("{email}", "ada@example.com").replace("{id}", "01JNOSUCHENTRY0000000000000");

/**
 * What is wrong with a response's standard headers (empty when nothing is): each header, the
 * CORS headers for a browser under /users/*, and whether the guard had to add any (`warnings`
 * are the structured `warn` lines written while the request ran).
 */
function standardHeaderProblems(
  res: Response,
  { path, origin, warnings }: { path: string; origin?: string; warnings: Record<string, unknown>[] },
): string[] {
  const problems: string[] = [];
  const h = res.headers;
  if (h.get("Cache-Control") !== "no-store") problems.push(`Cache-Control: ${h.get("Cache-Control")}`);
  if (h.get("X-Content-Type-Options") !== "nosniff") problems.push("no X-Content-Type-Options: nosniff");
  if (!REQUEST_ID.test(h.get("X-Request-Id") ?? "")) problems.push(`X-Request-Id: ${h.get("X-Request-Id")}`);
  if (path.startsWith("/users/")) {
    if (!/(^|, )Origin(,|$)/.test(h.get("Vary") ?? ""))
      problems.push(`Vary without Origin: ${h.get("Vary")}`);
    if (origin !== undefined && h.get("Access-Control-Allow-Origin") !== origin) {
      problems.push(`Access-Control-Allow-Origin: ${h.get("Access-Control-Allow-Origin")}`);
    }
  }
  for (const w of warnings.filter((w) => w.event === "response_headers_added")) {
    problems.push(`not built by respond(): the guard added ${JSON.stringify(w.added)}`);
  }
  return problems;
}

/** The structured `warn` lines written from now on. */
function warnings() {
  const spy = vi.spyOn(console, "warn").mockImplementation(() => {});
  vi.spyOn(console, "error").mockImplementation(() => {});
  return () =>
    spy.mock.calls.flatMap((args) => {
      try {
        return [JSON.parse(String(args[0])) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
}

/** Sends one request with a fetch spy in place, and returns what is wrong with its headers. */
async function check(path: string, init: SendOptions, origin?: string) {
  spyUpstream();
  const logged = warnings();
  const res = await send(path, init);
  await res.arrayBuffer();
  const problems = standardHeaderProblems(res, { path, origin, warnings: logged() });
  vi.restoreAllMocks();
  return { status: res.status, problems };
}

describe("every documented operation carries the standard headers, built by respond()", () => {
  it("walks every operation of the contract", () => {
    const walked = OPERATIONS.map((o) => `${o.method} ${o.path}`).sort();
    const documented = Object.entries(document.paths)
      .flatMap(([p, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${p}`))
      .sort();
    expect(walked).toEqual(documented);
    expect(walked.length).toBeGreaterThanOrEqual(6);
  });

  for (const op of OPERATIONS) {
    it(`${op.method} ${op.path}: as its caller, anonymously, from a browser, and with HEAD`, async () => {
      const path = concrete(op.path);
      // A tokens:admin token must expire; the token API exists only where TOKEN_ADMIN is on.
      const admin = op.scopes?.includes("tokens:admin") ?? false;
      const token = op.scopes
        ? await mint(op.scopes, admin ? { expiresAt: new Date(Date.now() + 86_400_000) } : {})
        : undefined;
      const body = op.body === undefined ? undefined : JSON.stringify(op.body);
      const json: Record<string, string> = body === undefined ? {} : { "Content-Type": "application/json" };
      const auth: Record<string, string> = token ? { Authorization: `Bearer ${token}` } : {};
      const preflight: Record<string, string> =
        op.method === "OPTIONS" ? { "Access-Control-Request-Method": "PATCH" } : {};
      const variants: [string, SendOptions, string?][] = [
        ["as documented", { method: op.method, body, headers: { ...json, ...auth } }],
        ["without a token", { method: op.method, body, headers: json }],
        [
          "from an allowed browser origin",
          {
            method: op.method,
            body,
            headers: { ...json, ...auth, ...preflight, Origin: BROWSER },
            bindings: CORS,
          },
          BROWSER,
        ],
        ["from another origin", { method: op.method, body, headers: { ...json, ...auth, Origin: ORIGIN } }],
      ];
      if (op.method === "GET") variants.push(["HEAD", { method: "HEAD", headers: auth }]);
      for (const [name, init, origin] of variants) {
        if (op.path.startsWith("/tokens")) init.bindings = { ...init.bindings, TOKEN_ADMIN: "on" };
        const { status, problems } = await check(path, init, origin);
        expect(problems, `${op.method} ${path} ${name} (${status})`).toEqual([]);
      }
    });
  }

  it("404 for unknown paths, 405 for every documented path with an undocumented method", async () => {
    for (const path of ["/", "/nope", "/users", "/audit/a/b"]) {
      const { status, problems } = await check(path, { method: "GET" });
      expect(status, path).toBe(404);
      expect(problems, path).toEqual([]);
    }
    for (const [path, item] of Object.entries(document.paths)) {
      const method = ["DELETE", "PUT", "POST"].find((m) => !(m.toLowerCase() in item)) ?? "DELETE";
      const { status, problems } = await check(concrete(path), {
        method,
        body: method === "DELETE" ? undefined : "{}",
      });
      expect(status, `${method} ${path}`).toBe(405);
      expect(problems, `${method} ${path}`).toEqual([]);
    }
  });

  it("OPTIONS without a preflight, and a preflight from a refused origin", async () => {
    for (const [name, init] of [
      ["plain OPTIONS", { method: "OPTIONS" }],
      [
        "refused preflight",
        { method: "OPTIONS", headers: { Origin: ORIGIN, "Access-Control-Request-Method": "PATCH" } },
      ],
    ] as [string, SendOptions][]) {
      const { problems } = await check("/users/ada@example.com", init);
      expect(problems, name).toEqual([]);
    }
  });

  it("on every refusal and failure of PATCH /users/:email, and on success", async () => {
    const token = await mint(["users:write"]);
    const audit = await mint(["audit:read"]);
    const responses: [string, () => Promise<Response>][] = [
      ["202 accepted", () => patchUser("ada@example.com", { first_name: "A" }, token)],
      ["400 email", () => patchUser("nope", { first_name: "A" }, token)],
      ["400 body", () => patchUser("ada@example.com", { first_name: 1 }, token)],
      ["401", () => patchUser("ada@example.com", { first_name: "A" })],
      ["403", () => patchUser("ada@example.com", { first_name: "A" }, audit)],
      ["413", () => patchUser("ada@example.com", " ".repeat(10_000), token)],
      ["415", () => patchUser("ada@example.com", "x", token, { headers: { "Content-Type": "text/plain" } })],
      [
        "500 config",
        () => patchUser("ada@example.com", { first_name: "A" }, token, { bindings: { VILLAGE_API_KEY: "" } }),
      ],
    ];
    for (const [name, call] of responses) {
      spyUpstream();
      const logged = warnings();
      const res = await call();
      expect(standardHeaderProblems(res, { path: "/users/", warnings: logged() }), name).toEqual([]);
      vi.restoreAllMocks();
    }
  });
});

describe("a route that forgets respond()", () => {
  /** The app's own middleware stack with one careless route on it. */
  function careless() {
    const app = withMiddleware(new Hono({ strict: true }));
    app.get("/careless", (c) => c.json({ ok: true }));
    app.get("/users/careless", (c) => c.json({ ok: true }, 200, { Vary: "Accept" }));
    app.get("/careful", (c) => respondJson(c, { ok: true }));
    app.get("/careless-error", () => {
      throw new ProblemError("forbidden", "No.");
    });
    return app;
  }

  it("still answers with every standard header, but the walk's check fails on it", async () => {
    for (const path of ["/careless", "/users/careless"]) {
      const logged = warnings();
      const res = await send(path, { app: careless() });
      expect(res.status).toBe(200);
      expect(res.headers.get("Cache-Control")).toBe("no-store");
      expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
      expect(res.headers.get("X-Request-Id")).toMatch(REQUEST_ID);
      expect(await res.json()).toEqual({ ok: true });
      const problems = standardHeaderProblems(res, { path, warnings: logged() });
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatch(/^not built by respond\(\): the guard added/);
      vi.restoreAllMocks();
    }
  });

  it("joins its own Vary with the CORS Vary: Origin", async () => {
    warnings();
    const res = await send("/users/careless", { app: careless() });
    expect(res.headers.get("Vary")).toBe("Accept, Origin");
  });

  it("while respond() and thrown problems pass the check untouched", async () => {
    for (const path of ["/careful", "/careless-error"]) {
      const logged = warnings();
      const res = await send(path, { app: careless() });
      await res.arrayBuffer();
      expect(standardHeaderProblems(res, { path, warnings: logged() }), path).toEqual([]);
      vi.restoreAllMocks();
    }
  });

  it("without the guard (a stack missing standardHeaders), the check names the missing headers", async () => {
    const bare = new Hono();
    bare.get("/careless", (c) => c.json({ ok: true }));
    const res = await send("/careless", { app: bare });
    expect(standardHeaderProblems(res, { path: "/careless", warnings: [] })).toEqual([
      "Cache-Control: null",
      "no X-Content-Type-Options: nosniff",
      "X-Request-Id: null",
    ]);
  });
});
