import { env } from "cloudflare:test";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  allowedOriginsOf,
  CONFIG_BINDINGS,
  configOf,
  ORIGIN_BINDINGS,
  parseAllowedOrigins,
  parseConfig,
  parseUserAuth,
  USER_AUTH_BINDINGS,
  userAuthOf,
} from "../src/config.ts";
import { ProblemError } from "../src/http/errors.ts";
import { parseSigningKey } from "../src/model/mac.ts";
import { captureLogs, expectProblem, mint, patchUser, spyUpstream } from "./helpers.ts";

afterEach(() => vi.restoreAllMocks());

let token: string;
beforeAll(async () => {
  token = await mint(["users:write"]);
});

const sandbox = new URL(env.VILLAGE_API_BASE);

describe("a misconfigured Worker answers 500 with a generic body and names the binding only in its log", () => {
  const cases: [string, string, Record<string, string | undefined>][] = [
    ["missing VILLAGE_API_KEY", "VILLAGE_API_KEY", { VILLAGE_API_KEY: undefined }],
    ["empty VILLAGE_API_KEY", "VILLAGE_API_KEY", { VILLAGE_API_KEY: "" }],
    ["blank VILLAGE_API_KEY", "VILLAGE_API_KEY", { VILLAGE_API_KEY: "  \t " }],
    ["a VILLAGE_API_KEY with a line break", "VILLAGE_API_KEY", { VILLAGE_API_KEY: "hunter2\nhunter3" }],
    ["a VILLAGE_API_KEY with a carriage return", "VILLAGE_API_KEY", { VILLAGE_API_KEY: "hunter2\rx" }],
    ["a VILLAGE_API_KEY with NUL", "VILLAGE_API_KEY", { VILLAGE_API_KEY: "hunter2\u0000x" }],
    ["missing AUDIT_SIGNING_KEY", "AUDIT_SIGNING_KEY", { AUDIT_SIGNING_KEY: undefined }],
    ["empty AUDIT_SIGNING_KEY", "AUDIT_SIGNING_KEY", { AUDIT_SIGNING_KEY: "" }],
    [
      "an AUDIT_SIGNING_KEY without a key id",
      "AUDIT_SIGNING_KEY",
      { AUDIT_SIGNING_KEY: btoa("k".repeat(32)) },
    ],
    ["an AUDIT_SIGNING_KEY that is not base64", "AUDIT_SIGNING_KEY", { AUDIT_SIGNING_KEY: "k1:not base64!" }],
    [
      "an AUDIT_SIGNING_KEY under 32 bytes",
      "AUDIT_SIGNING_KEY",
      { AUDIT_SIGNING_KEY: `k1:${btoa("short")}` },
    ],
    ["missing VILLAGE_NETWORK_ID", "VILLAGE_NETWORK_ID", { VILLAGE_NETWORK_ID: undefined }],
    ["empty VILLAGE_NETWORK_ID", "VILLAGE_NETWORK_ID", { VILLAGE_NETWORK_ID: "" }],
    ["a VILLAGE_NETWORK_ID with a slash", "VILLAGE_NETWORK_ID", { VILLAGE_NETWORK_ID: "net/../other" }],
    ["a VILLAGE_NETWORK_ID of ..", "VILLAGE_NETWORK_ID", { VILLAGE_NETWORK_ID: ".." }],
    ["a VILLAGE_NETWORK_ID of .", "VILLAGE_NETWORK_ID", { VILLAGE_NETWORK_ID: "." }],
    ["a VILLAGE_NETWORK_ID with a space", "VILLAGE_NETWORK_ID", { VILLAGE_NETWORK_ID: "my network" }],
    ["missing VILLAGE_API_BASE", "VILLAGE_API_BASE", { VILLAGE_API_BASE: undefined }],
    ["a VILLAGE_API_BASE that is not a URL", "VILLAGE_API_BASE", { VILLAGE_API_BASE: "app.villagelabs.net" }],
    ["http on a public host", "VILLAGE_API_BASE", { VILLAGE_API_BASE: "http://app.villagelabs.net" }],
    ["http on a loopback-looking host", "VILLAGE_API_BASE", { VILLAGE_API_BASE: "http://127.0.0.1.nip.io" }],
    ["another scheme", "VILLAGE_API_BASE", { VILLAGE_API_BASE: "ftp://app.villagelabs.net" }],
    [
      "credentials in the base",
      "VILLAGE_API_BASE",
      { VILLAGE_API_BASE: "https://user:hunter2@app.villagelabs.net" },
    ],
    [
      "a user name in the base",
      "VILLAGE_API_BASE",
      { VILLAGE_API_BASE: "https://hunter2@app.villagelabs.net" },
    ],
    [
      "a query in the base",
      "VILLAGE_API_BASE",
      { VILLAGE_API_BASE: "https://app.villagelabs.net/?key=hunter2" },
    ],
    ["a fragment in the base", "VILLAGE_API_BASE", { VILLAGE_API_BASE: "https://app.villagelabs.net/#x" }],
    ["a non-numeric timeout", "UPSTREAM_TIMEOUT_MS", { UPSTREAM_TIMEOUT_MS: "ten" }],
    ["a zero timeout", "UPSTREAM_TIMEOUT_MS", { UPSTREAM_TIMEOUT_MS: "0" }],
    ["a negative timeout", "UPSTREAM_TIMEOUT_MS", { UPSTREAM_TIMEOUT_MS: "-5" }],
    ["a fractional timeout", "UPSTREAM_TIMEOUT_MS", { UPSTREAM_TIMEOUT_MS: "150.5" }],
    ["a timeout below 100 ms", "UPSTREAM_TIMEOUT_MS", { UPSTREAM_TIMEOUT_MS: "99" }],
    ["a timeout above 25 s", "UPSTREAM_TIMEOUT_MS", { UPSTREAM_TIMEOUT_MS: "25001" }],
  ];

  it.each(cases)("%s", async (_name, binding, bindings) => {
    const calls = spyUpstream();
    const logs = captureLogs("error");
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, token, {
      bindings: bindings as Partial<Env>,
    });
    const text = await res.clone().text();
    const body = await expectProblem(res, 500, "internal");
    expect(body.detail).toBe("The service is misconfigured.");
    expect(text).not.toMatch(/VILLAGE|UPSTREAM|hunter2|wrangler/);
    const problem = logs.events().find((e) => e.event === "problem");
    expect(problem).toMatchObject({ level: "error", status: 500, request_id: body.instance });
    expect(String(problem?.detail)).toContain(binding);
    const lines = logs.lines().join("\n");
    expect(lines).not.toContain("hunter2");
    expect(lines).not.toContain(env.VILLAGE_API_KEY);
    expect(lines).not.toContain(token);
    expect(calls).toHaveLength(0);
  });

  it("is checked before the token, so an operator sees it on the first request", async () => {
    const calls = spyUpstream();
    captureLogs("error");
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, undefined, {
      bindings: { VILLAGE_API_KEY: "" },
    });
    await expectProblem(res, 500, "internal");
    expect(calls).toHaveLength(0);
  });
});

describe("the Village base", () => {
  it.each(["prefix", "prefix/", "a/b"])(
    "with a path prefix (%s) puts it before /networks",
    async (prefix) => {
      const calls = spyUpstream();
      const res = await patchUser("ada@example.com", { first_name: "Ada" }, token, {
        bindings: { VILLAGE_API_BASE: `${env.VILLAGE_API_BASE}/${prefix}` },
      });
      expect(res.status).toBe(202);
      expect(calls).toHaveLength(1);
      expect(calls[0].url).toBe(
        `${sandbox.origin}/${prefix.replace(/\/$/, "")}/networks/${encodeURIComponent(env.VILLAGE_NETWORK_ID)}/users/ada%40example.com`,
      );
    },
  );

  it("with a trailing slash is the same base", async () => {
    const calls = spyUpstream();
    const res = await patchUser("ada@example.com", { first_name: "Ada" }, token, {
      bindings: { VILLAGE_API_BASE: `${env.VILLAGE_API_BASE}/` },
    });
    expect(res.status).toBe(202);
    expect(new URL(calls[0].url).pathname).toBe(
      `/networks/${encodeURIComponent(env.VILLAGE_NETWORK_ID)}/users/ada%40example.com`,
    );
  });
});

describe("parseConfig", () => {
  const base = {
    ...env,
    VILLAGE_API_BASE: "https://app.villagelabs.net",
    VILLAGE_NETWORK_ID: "net-1",
    VILLAGE_API_KEY: "k",
    UPSTREAM_TIMEOUT_MS: "10000",
  } as Env;

  it("accepts the production default", () => {
    expect(parseConfig(base)).toEqual({
      villageBase: "https://app.villagelabs.net",
      villageOrigin: "https://app.villagelabs.net",
      villageNetworkId: "net-1",
      villageApiKey: "k",
      upstreamTimeoutMs: 10_000,
      userAuth: null,
      auditValues: "masked",
      auditRetentionDays: 400,
      auditSigningKey: parseSigningKey(env.AUDIT_SIGNING_KEY),
    });
  });

  it.each(["http://127.0.0.1:8788", "http://localhost:8788", "http://[::1]:8788"])(
    "allows http on loopback (%s)",
    (url) => {
      expect(parseConfig({ ...base, VILLAGE_API_BASE: url }).villageOrigin).toBe(url);
    },
  );

  it("uses 10000 ms when UPSTREAM_TIMEOUT_MS is empty, and takes the bounds", () => {
    expect(parseConfig({ ...base, UPSTREAM_TIMEOUT_MS: "" }).upstreamTimeoutMs).toBe(10_000);
    expect(parseConfig({ ...base, UPSTREAM_TIMEOUT_MS: "100" }).upstreamTimeoutMs).toBe(100);
    expect(parseConfig({ ...base, UPSTREAM_TIMEOUT_MS: "25000" }).upstreamTimeoutMs).toBe(25_000);
  });

  it("trims the key", () => {
    expect(parseConfig({ ...base, VILLAGE_API_KEY: " k \n" }).villageApiKey).toBe("k");
  });

  it("throws a ProblemError whose wire detail is generic", () => {
    try {
      parseConfig({ ...base, VILLAGE_API_KEY: "" });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ProblemError);
      const problem = err as ProblemError;
      expect(problem.status).toBe(500);
      expect(problem.detail).toBe("The service is misconfigured.");
      expect(problem.logDetail).toMatch(/^configuration: VILLAGE_API_KEY /);
    }
  });
});

describe("configOf", () => {
  const base = {
    ...env,
    VILLAGE_API_BASE: "https://app.villagelabs.net",
    VILLAGE_NETWORK_ID: "net-1",
    VILLAGE_API_KEY: "k",
  } as Env;

  it("each parser reads only the bindings named for it, so a change to any binding it reads is seen", () => {
    const full = {
      ...base,
      ALLOWED_ORIGINS: "https://app.example.com",
      AUTH_JWKS_URL: "https://idp.example.com/jwks.json",
      AUTH_ISSUER: "https://idp.example.com/",
      AUTH_AUDIENCE: "village-edge",
    } as Env;
    const parsers: [string, (env: Env) => unknown, readonly string[]][] = [
      ["parseConfig", parseConfig, CONFIG_BINDINGS],
      ["parseUserAuth", parseUserAuth, USER_AUTH_BINDINGS],
      ["parseAllowedOrigins", parseAllowedOrigins, ORIGIN_BINDINGS],
    ];
    for (const [name, parse, names] of parsers) {
      const read = new Set<string | symbol>();
      const watched = new Proxy(full, {
        get(target, key, receiver) {
          read.add(key);
          return Reflect.get(target, key, receiver);
        },
      });
      parse(watched);
      expect(
        [...read].filter((key) => !(names as readonly (string | symbol)[]).includes(key)),
        name,
      ).toEqual([]);
    }
  });

  it("userAuthOf and allowedOriginsOf reuse their last parse and parse again when a binding changes", () => {
    const auth = {
      ...base,
      AUTH_JWKS_URL: "https://idp.example.com/jwks.json",
      AUTH_ISSUER: "https://idp.example.com/",
      AUTH_AUDIENCE: "village-edge",
      ALLOWED_ORIGINS: "https://app.example.com",
    } as Env;
    const userAuth = userAuthOf(auth);
    expect(userAuthOf({ ...auth })).toBe(userAuth);
    expect(userAuthOf({ ...auth, SELF_SERVICE_FIELDS: "first_name" } as Env)?.selfServiceFields).toEqual([
      "first_name",
    ]);
    const origins = allowedOriginsOf(auth);
    expect(allowedOriginsOf({ ...auth })).toBe(origins);
    expect(allowedOriginsOf({ ...auth, ALLOWED_ORIGINS: "https://b.example.com" } as Env)).toEqual([
      "https://b.example.com",
    ]);
    expect(() => allowedOriginsOf({ ...auth, ALLOWED_ORIGINS: "*" } as Env)).toThrow(ProblemError);
  });

  it("reuses the last parse while the bindings are the same, and parses again when one changes", () => {
    const first = configOf(base);
    expect(configOf({ ...base })).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    for (const name of CONFIG_BINDINGS) {
      const changed = {
        ...base,
        [name]: name === "UPSTREAM_TIMEOUT_MS" ? "2000" : `${base[name] ?? ""}x`,
      } as Env;
      let next: unknown;
      try {
        next = configOf(changed);
      } catch (err) {
        next = err;
      }
      expect(next, name).not.toBe(first);
      expect(configOf(base)).toEqual(first);
    }
  });

  it("never keeps a configuration that does not parse", () => {
    expect(() => configOf({ ...base, VILLAGE_API_KEY: "" } as Env)).toThrow(ProblemError);
    expect(() => configOf({ ...base, VILLAGE_API_KEY: "" } as Env)).toThrow(ProblemError);
  });
});
