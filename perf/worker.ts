/**
 * The benchmark Worker, run in workerd by `perf/bench.ts` (`npm run bench`).
 *
 * `POST /run?case=<name>&n=<iterations>` runs one case n times in this isolate and answers
 * with the elapsed time. Every iteration is checked (status, upstream calls), so a case that
 * silently takes an error path fails the run instead of looking fast.
 *
 * A request with `X-Bench-Target: full` or `bare` goes, as it came, to the app or to the bare
 * pass-through (the driver sends many over HTTP to workerd and reads its CPU time), with the
 * real `fetch` to a local upstream and the real console.
 *
 * - `full`: the deployed Worker's default export, exactly as deployed, for one valid
 *   `PATCH /users/:email` changing all three fields: every middleware, token check, validation,
 *   whatever KV writes the app does (in-memory KV), forwarding to a stubbed Village that
 *   answers 201, and the `waitUntil` work, awaited.
 * - `bare`: a bare Hono pass-through of the same request to the same stub (key injected, no checks).
 * - `floor`: the bare pass-through plus only the runtime work this design requires of any
 *   implementation, each piece once and the cheapest way, and none of our logic (see `floor`
 *   below). `full` over `floor` is what our own code costs.
 * - `token`, `validation`: the token check and the body/path validation alone.
 * - `request`: building the incoming Request and reading a response body: harness cost that
 *   the runtime, not our code, pays in production; reported so it can be subtracted.
 * - the rest (`--detail`): single parts, to find where the time goes.
 */
import { Hono } from "hono";
import { createToken, findToken, hashSecret, isWellFormedToken } from "../src/auth/tokens.ts";
import { parseConfig } from "../src/config.ts";
import worker from "../src/index.ts";
import { parseEmailSegment } from "../src/model/email.ts";
import { changeSchema } from "../src/users/changes.ts";
import { buildUpstreamRequest, USER_AGENT } from "../src/users/upstream.ts";
import { countingKv, type KvCounts } from "./counting-kv.ts";
import { memoryKv } from "./memory-kv.ts";

const EDGE = "https://edge.bench.test";
const EMAIL_SEGMENT = "ada.lovelace%40example.com";
const BODY = JSON.stringify({ first_name: "Ada", last_name: "Lovelace", phone_number: "+44 20 7123 4567" });
const UPSTREAM_BODY = JSON.stringify({ status: "queued" });

let upstreamCalls = 0;
/** KV operations of every target since the last `POST /kv-counts` (the driver counts one target's). */
const kvCounts: KvCounts = { reads: 0, writes: 0 };
/** A fresh in-memory namespace whose operations are counted. */
const benchKv = () => countingKv(memoryKv(), kvCounts);
let upstreamBase = "";

/**
 * The stubbed Village. Like the real `fetch`, it turns its arguments into a Request (the runtime
 * does that for every subrequest, for the bare pass-through as for the app) and reads the body
 * (the network sends it); then it answers 201 to the expected URL shape and refuses anything else.
 */
async function stubFetch(input: RequestInfo | URL, init?: RequestInit): Promise<Response> {
  const req = new Request(input, init);
  if (req.method !== "PATCH" || !req.url.startsWith(`${upstreamBase}/networks/`)) {
    throw new Error(`bench: unexpected outbound ${req.method} ${req.url}`);
  }
  // The network sends the body: both paths pay for it being read.
  await req.arrayBuffer();
  upstreamCalls++;
  return new Response(UPSTREAM_BODY, { status: 201, headers: { "Content-Type": "application/json" } });
}
const realFetch = globalThis.fetch;

/** A bare pass-through: route, inject the key, forward the body as is, return Village's answer. */
const bare = new Hono<{ Bindings: Env }>();
bare.patch("/users/:email", async (c) => {
  const upstream = await fetch(
    `${c.env.VILLAGE_API_BASE}/networks/${c.env.VILLAGE_NETWORK_ID}/users/${encodeURIComponent(c.req.param("email"))}`,
    {
      method: "PATCH",
      headers: {
        Authorization: `Bearer ${c.env.VILLAGE_API_KEY}`,
        "Content-Type": "application/json",
        Accept: "application/json",
      },
      body: c.req.raw.body,
    },
  );
  return new Response(upstream.body, { status: upstream.status, headers: upstream.headers });
});

/** The response headers every answer of the app carries (src/http/respond.ts). */
const FLOOR_HEADERS = (requestId: string) => ({
  "Content-Type": "application/json",
  "Cache-Control": "no-store",
  "X-Content-Type-Options": "nosniff",
  "X-Request-Id": requestId,
  Vary: "Origin",
});
const FLOOR_TTL_S = 400 * 86_400;

/** The floor's signing key, imported once per isolate (as src/model/mac.ts caches its own). */
let floorKey: Promise<CryptoKey> | undefined;
const floorEncoder = new TextEncoder();

/**
 * One HMAC-SHA-256 over a record's key name, metadata and value, the cheapest way: the design
 * signs every audit record it requires (the intent once for its three keys, the outcome once).
 */
async function floorMac(env: Env, name: string, metadata: string, value: string): Promise<string> {
  floorKey ??= crypto.subtle.importKey(
    "raw",
    Uint8Array.from(atob(env.AUDIT_SIGNING_KEY.slice(env.AUDIT_SIGNING_KEY.indexOf(":") + 1)), (ch) =>
      ch.charCodeAt(0),
    ),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const sig = await crypto.subtle.sign(
    "HMAC",
    await floorKey,
    floorEncoder.encode(`${name}\n${metadata}\n${value}`),
  );
  return btoa(String.fromCharCode(...new Uint8Array(sig)));
}

/**
 * The floor: what any implementation of this design must make the runtime do for one change,
 * with none of our checks. Hash the presented token and read its record (tokens are stored by
 * SHA-256), ask the caller's and the phone's rate limiters, read the body and write it again
 * as JSON (it is validated and rebuilt, never streamed through), write the intent under its
 * three keys and wait for them (audit before forwarding), send the five headers the design
 * names, bound the call with `AbortSignal.timeout`, drop Village's body, write the outcome
 * after the response (`waitUntil`), log one line, answer 202 with a JSON body and the headers
 * every answer carries; sign the intent once and the outcome once (one HMAC each, the key
 * imported once per isolate). The metadata and values are the size of the app's.
 */
const floor = new Hono<{ Bindings: Env }>();
floor.patch("/users/:email", async (c) => {
  const secret = (c.req.header("Authorization") ?? "").slice("Bearer ".length);
  const hash = await hashSecret(secret);
  if ((await c.env.TOKENS.get(`token:${hash}`, "json")) === null) throw new Error("bench: unknown token");
  const email = decodeURIComponent(c.req.param("email"));
  await c.env.TOKEN_RATE_LIMITER.limit({ key: "token:bench" });
  const body = JSON.stringify(JSON.parse(await c.req.raw.text()));
  await c.env.PHONE_RATE_LIMITER.limit({ key: `phone:${email}` });
  const id = crypto.randomUUID();
  const metadata = {
    request_id: id,
    token_id: "tok_0123456789abcdef",
    token_name: "bench",
    email,
    fields: ["first_name", "last_name", "phone_number"],
  };
  const value = JSON.stringify({ ...metadata, id, time: new Date().toISOString(), body });
  const mac = await floorMac(c.env, `entry:${id}`, JSON.stringify(metadata), value);
  const options = { expirationTtl: FLOOR_TTL_S, metadata: { ...metadata, mac } };
  const audit = c.env.AUDIT;
  await Promise.all([
    audit.put(`entry:${id}`, value, options),
    audit.put(`by-token:${metadata.token_id}:${id}`, "", options),
    audit.put(`by-email:${email}:${id}`, "", options),
  ]);
  const upstream = await fetch(
    `${c.env.VILLAGE_API_BASE}/networks/${c.env.VILLAGE_NETWORK_ID}/users/${encodeURIComponent(email)}`,
    {
      method: "PATCH",
      headers: {
        Authorization: `Bearer ${c.env.VILLAGE_API_KEY}`,
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-Request-Id": id,
        "User-Agent": USER_AGENT,
      },
      body,
      redirect: "manual",
      signal: AbortSignal.timeout(10_000),
    },
  );
  upstream.body?.cancel().catch(() => {});
  const outcome = JSON.stringify({ id, outcome: "accepted", upstream_status: upstream.status });
  c.executionCtx.waitUntil(
    floorMac(c.env, `outcome:${id}`, "", outcome).then((mac) =>
      audit.put(`outcome:${id}`, outcome, { expirationTtl: FLOOR_TTL_S, metadata: { mac } }),
    ),
  );
  console.log(JSON.stringify({ level: "info", event: "request", request_id: id, status: 202 }));
  return new Response(JSON.stringify({ status: "accepted", request_id: id, email }), {
    status: 202,
    headers: FLOOR_HEADERS(id),
  });
});

type App = { fetch: (req: Request, env: Env, ctx: ExecutionContext) => Response | Promise<Response> };

/**
 * The apps a request may be sent to with `X-Bench-Target`. `npm run bench:ab` builds an entry
 * that adds another commit's app here (`base-full`), so both run in this one isolate.
 */
export const TARGETS: Record<string, App> = { full: worker, floor, bare };

interface Fixture {
  env: Env;
  secret: string;
}

let fixture: Promise<Fixture> | undefined;

type ConsoleMethod = "log" | "info" | "warn" | "error" | "debug";
const CONSOLE_METHODS: ConsoleMethod[] = ["log", "info", "warn", "error", "debug"];
const realConsole = Object.fromEntries(CONSOLE_METHODS.map((m) => [m, console[m]])) as Record<
  ConsoleMethod,
  (...args: unknown[]) => void
>;
let lines = 0;

/**
 * By default console output is counted and dropped inside the bench isolate: locally, workerd
 * hands every line to the test harness's log capture on other threads, which is not what a
 * deployed Worker pays. The app still builds each line (JSON.stringify in src/http/log.ts). The
 * `log-line` case shows what one emitted line costs here; `--console` keeps the real console.
 */
function useConsole(real: boolean): void {
  for (const m of CONSOLE_METHODS) {
    console[m] = real
      ? realConsole[m]
      : () => {
          lines++;
        };
  }
}

/** A rate limiter that always allows: the bench sends thousands of changes to one user. */
const allowAll = { limit: async () => ({ success: true }) };

/**
 * The bench's environment: the real bindings and vars of wrangler.toml, with in-memory KV,
 * always-allowing rate limiters (any binding with a `limit` method) and one real token.
 */
async function setUp(env: Env): Promise<Fixture> {
  upstreamBase = env.VILLAGE_API_BASE;
  const benchEnv: Env = { ...env, TOKENS: benchKv(), AUDIT: benchKv() };
  for (const [name, binding] of Object.entries(env)) {
    if (typeof (binding as { limit?: unknown })?.limit === "function") {
      Object.assign(benchEnv, { [name]: allowAll });
    }
  }
  // Under plain workerd (the HTTP half) the driver names the rate limiters wrangler.toml binds.
  const named = (env as unknown as { BENCH_RATE_LIMITERS?: string }).BENCH_RATE_LIMITERS ?? "";
  for (const name of named.split(",").filter(Boolean)) Object.assign(benchEnv, { [name]: allowAll });
  const { secret } = await createToken(benchEnv.TOKENS, { name: "bench", scopes: ["users:write"] });
  return { env: benchEnv, secret };
}

const patchRequest = (secret: string, body = BODY) =>
  new Request(`${EDGE}/users/${EMAIL_SEGMENT}`, {
    method: "PATCH",
    headers: {
      ...(secret ? { Authorization: `Bearer ${secret}` } : {}),
      "Content-Type": "application/json",
      "Content-Length": String(new TextEncoder().encode(body).byteLength),
    },
    body,
  });

/** A well-formed token (valid checksum) that is not in KV. */
const UNKNOWN_TOKEN = (() => {
  const body = `vge_${"0".repeat(64)}`;
  let crc = 0xffffffff;
  for (let i = 0; i < body.length; i++) {
    crc ^= body.charCodeAt(i);
    for (let k = 0; k < 8; k++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
  }
  return `${body}${((crc ^ 0xffffffff) >>> 0).toString(16).padStart(8, "0")}`;
})();

/** Runs one request through a fetch handler like the runtime would, and checks its status. */
async function serve(
  handler: (req: Request, env: Env, ctx: ExecutionContext) => Response | Promise<Response>,
  req: Request,
  env: Env,
  expected: number,
  upstream = 1,
): Promise<void> {
  const pending: Promise<unknown>[] = [];
  const ctx = {
    waitUntil: (p: Promise<unknown>) => void pending.push(p),
    passThroughOnException: () => {},
    props: {},
  } as unknown as ExecutionContext;
  const before = upstreamCalls;
  const res = await handler(req, env, ctx);
  const text = await res.text();
  await Promise.all(pending);
  if (res.status !== expected || upstreamCalls !== before + upstream) {
    throw new Error(
      `bench: expected ${expected} and ${upstream} upstream call(s), got ${res.status} and ${upstreamCalls - before}: ${text.slice(0, 200)}`,
    );
  }
}

type Case = (f: Fixture) => Promise<unknown> | unknown;

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`bench: ${what} failed`);
}

const CASES: Record<string, Case> = {
  full: (f) => serve(worker.fetch, patchRequest(f.secret), f.env, 202),
  floor: (f) => serve(floor.fetch, patchRequest(f.secret), f.env, 202),
  bare: (f) => serve(bare.fetch, patchRequest(f.secret), f.env, 201),
  token: async (f) =>
    check(isWellFormedToken(f.secret) && (await findToken(f.env.TOKENS, f.secret)) !== null, "token"),
  validation: () => {
    parseEmailSegment(EMAIL_SEGMENT);
    check(changeSchema().safeParse(JSON.parse(BODY)).success, "validation");
  },
  healthz: (f) => serve(worker.fetch, new Request(`${EDGE}/healthz`), f.env, 200, 0),
  "no-token": (f) => serve(worker.fetch, patchRequest(""), f.env, 401, 0),
  "bad-checksum": (f) =>
    serve(
      worker.fetch,
      patchRequest(`${f.secret.slice(0, -1)}${f.secret.endsWith("0") ? "1" : "0"}`),
      f.env,
      401,
      0,
    ),
  "unknown-token": (f) => serve(worker.fetch, patchRequest(UNKNOWN_TOKEN), f.env, 401, 0),
  "invalid-body": (f) =>
    serve(worker.fetch, patchRequest(f.secret, '{"phone_number":"+1 2"}'), f.env, 400, 0),
  request: async (f) => {
    patchRequest(f.secret);
    await new Response(UPSTREAM_BODY).arrayBuffer();
  },
  "log-line": () =>
    realConsole.log(
      '{"level":"info","event":"request","request_id":"0b6c4c2e-8e0e-4f43-9d5c-5f0c6c1b7d3a","method":"PATCH","route":"/users/:email","status":202,"outcome":"accepted","token_id":"tok_0123456789abcdef","upstream_status":201,"latency_ms":3}',
    ),
  hash: (f) => hashSecret(f.secret),
  "kv-get": async (f) => check((await f.env.TOKENS.get("token:missing", "json")) === null, "kv"),
  "token-shape": (f) => check(isWellFormedToken(f.secret), "shape"),
  config: (f) => parseConfig(f.env),
  email: () => parseEmailSegment(EMAIL_SEGMENT),
  json: () => JSON.parse(BODY),
  names: () => check(changeSchema().safeParse({ first_name: "Ada", last_name: "Lovelace" }).success, "names"),
  phone: () => check(changeSchema().safeParse({ phone_number: "+44 20 7123 4567" }).success, "phone"),
  "upstream-request": (f) =>
    buildUpstreamRequest(
      parseConfig(f.env),
      "ada.lovelace@example.com",
      { first_name: "Ada", last_name: "Lovelace", phone_number: "+442071234567" },
      "0b6c4c2e-8e0e-4f43-9d5c-5f0c6c1b7d3a",
    ),
};

export default {
  async fetch(req: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(req.url);
    const target = req.headers.get("X-Bench-Target");
    if (target !== null) {
      globalThis.fetch = realFetch;
      fixture ??= setUp(env);
      const f = await fixture;
      // `X-Bench-Console: drop` (npm run bench:profile): an attached inspector gets every line too.
      useConsole(req.headers.get("X-Bench-Console") !== "drop");
      const app = Object.hasOwn(TARGETS, target) ? TARGETS[target] : undefined;
      if (!app)
        return new Response(`X-Bench-Target: one of ${Object.keys(TARGETS).join(", ")}`, { status: 400 });
      return app.fetch(req, f.env, ctx);
    }
    if (url.pathname === "/reset") {
      // Between the driver's HTTP batches: an empty audit namespace, so that thousands of
      // in-memory entries (KV is remote in production) do not grow this isolate's heap.
      if (fixture) (await fixture).env.AUDIT = benchKv();
      return new Response(null, { status: 204 });
    }
    if (url.pathname === "/kv-counts") {
      // POST zeroes the counts; GET reads them once the previous requests' `waitUntil` work
      // (the outcome write) has had time to start.
      if (req.method === "POST") {
        kvCounts.reads = 0;
        kvCounts.writes = 0;
        return new Response(null, { status: 204 });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
      return Response.json(kvCounts);
    }
    if (url.pathname === "/secret") {
      fixture ??= setUp(env);
      return new Response((await fixture).secret);
    }
    globalThis.fetch = stubFetch as typeof fetch;
    const name = url.searchParams.get("case") ?? "";
    const n = Number(url.searchParams.get("n") ?? "0");
    const run = CASES[name];
    if (req.method !== "POST" || url.pathname !== "/run" || !run || !Number.isInteger(n) || n < 0) {
      return Response.json(
        { error: "POST /run?case=<name>&n=<iterations>", cases: Object.keys(CASES) },
        { status: 400 },
      );
    }
    fixture ??= setUp(env);
    const f = await fixture;
    // A fresh audit namespace per batch: the trail grows by a few keys per change.
    f.env.AUDIT = benchKv();
    useConsole(url.searchParams.get("console") === "real");
    lines = 0;
    try {
      const started = performance.now();
      for (let i = 0; i < n; i++) await run(f);
      return Response.json({ case: name, n, ms: performance.now() - started, lines });
    } catch (err) {
      return Response.json({ error: err instanceof Error ? err.message : String(err) }, { status: 500 });
    } finally {
      useConsole(true);
    }
  },
} satisfies ExportedHandler<Env>;
