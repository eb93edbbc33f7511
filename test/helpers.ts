import { createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { expect, vi } from "vitest";
import type { Fault, ReceivedRequest } from "../fakes/sandbox-types.ts";
import { createToken, type NewToken } from "../src/auth/tokens.ts";
import worker from "../src/index.ts";
import document from "../src/meta/openapi.json";
import { observe } from "./contract.ts";

export const ORIGIN = "https://edge.test";

/** Every secret handed out in this test file: none may ever show in a response. */
const secrets = new Set<string>([env.VILLAGE_API_KEY]);

/** Mints a real token in the test's TOKENS namespace and returns its secret. */
export async function mint(scopes: string[], extra: Partial<NewToken> = {}): Promise<string> {
  const { secret } = await createToken(env.TOKENS, { name: "test token", scopes, ...extra });
  secrets.add(secret);
  return secret;
}

export interface SendOptions extends RequestInit {
  /** Binding overrides for this request. */
  bindings?: Partial<Env>;
  /** The app to send to (a fresh `createApp()`, e.g. for an empty JWKS cache); the Worker's by default. */
  app?: { fetch: typeof worker.fetch };
}

/**
 * Sends a request through the Worker's default export, waits for its `waitUntil` work,
 * checks that no secret of this test run appears in the response, and records the answer's
 * (operation, status, content type) for the contract check (test/contract.ts).
 */
export async function send(path: string, options: SendOptions = {}): Promise<Response> {
  const { bindings, app = worker, ...init } = options;
  const ctx = createExecutionContext();
  const req = new Request(`${ORIGIN}${path}`, init);
  const res = await app.fetch(req, { ...env, ...bindings }, ctx);
  await waitOnExecutionContext(ctx);
  // test/contract.ts: every answer of the service must be in the contract (a test's own app is not the service).
  if (app === worker) observe(document, req, res);
  const text = await res.clone().text();
  const headers = JSON.stringify([...res.headers]);
  for (const secret of secrets) {
    expect(text.includes(secret), "a secret leaked into a response body").toBe(false);
    expect(headers.includes(secret), "a secret leaked into a response header").toBe(false);
  }
  return res;
}

/** `PATCH /users/<email>` with a JSON body (a string is sent as is). */
export function patchUser(
  email: string,
  body: unknown,
  token?: string,
  options: SendOptions = {},
): Promise<Response> {
  const headers = new Headers(options.headers);
  if (!headers.has("Content-Type")) headers.set("Content-Type", "application/json");
  if (token !== undefined && !headers.has("Authorization")) headers.set("Authorization", `Bearer ${token}`);
  return send(`/users/${email}`, {
    method: "PATCH",
    ...options,
    headers,
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance: string;
  errors?: { field: string; pointer: string; detail: string }[];
}

/** Asserts a problem+json response of this status and type, and returns its body. */
export async function expectProblem(res: Response, status: number, type: string): Promise<Problem> {
  expect(res.status).toBe(status);
  expect(res.headers.get("Content-Type")).toBe("application/problem+json");
  expect(res.headers.get("Cache-Control")).toBe("no-store");
  const body = (await res.json()) as Problem;
  expect(body).toMatchObject({ type: `urn:village-edge:problem:${type}`, status });
  expect(body.instance).toBe(res.headers.get("X-Request-Id"));
  return body;
}

export interface UpstreamCall {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
  redirect: Request["redirect"];
}

/**
 * Replaces `fetch` with a spy that records every outbound call and answers with `respond`.
 * A call to anything but the configured Village base fails the test loudly.
 */
export function spyUpstream(
  respond: (call: UpstreamCall, signal: AbortSignal | undefined) => Response | Promise<Response> = () =>
    Response.json({ status: "queued" }, { status: 201 }),
) {
  const calls: UpstreamCall[] = [];
  vi.spyOn(globalThis, "fetch").mockImplementation(async (input, init) => {
    const req = new Request(input, init);
    if (!req.url.startsWith(env.VILLAGE_API_BASE)) {
      throw new Error(`unexpected outbound fetch to ${req.url}`);
    }
    const call: UpstreamCall = {
      url: req.url,
      method: req.method,
      headers: Object.fromEntries(req.headers),
      body: await req.text(),
      redirect: req.redirect,
    };
    calls.push(call);
    return respond(call, init?.signal ?? req.signal);
  });
  return calls;
}

/** A fault the sandbox plays instead of answering one PATCH. */
export type SandboxFault = Fault;

/** A request the sandbox received on its Patch User route (authorization redacted). */
export type SandboxReceived = ReceivedRequest;

/**
 * A fresh network of its own in the local Village sandbox, so a test sees only its own
 * traffic and faults. Pass `bindings` to `send`/`patchUser`; its key joins the leak check.
 */
export async function sandboxNetwork() {
  const res = await fetch(`${env.VILLAGE_API_BASE}/_sandbox/networks`, { method: "POST", body: "{}" });
  expect(res.status).toBe(201);
  const { network_id: id, api_key: apiKey } = (await res.json()) as { network_id: string; api_key: string };
  secrets.add(apiKey);
  const control = `${env.VILLAGE_API_BASE}/_sandbox/networks/${encodeURIComponent(id)}`;
  return {
    id,
    apiKey,
    bindings: { VILLAGE_NETWORK_ID: id, VILLAGE_API_KEY: apiKey } satisfies Partial<Env>,
    /** Queues faults, each played instead of answering one incoming PATCH. */
    async fault(...faults: SandboxFault[]): Promise<void> {
      const r = await fetch(`${control}/faults`, { method: "POST", body: JSON.stringify({ faults }) });
      expect(r.status).toBe(200);
    },
    /** Everything the sandbox received for this network. */
    async received(): Promise<SandboxReceived[]> {
      const r = await fetch(`${control}/received`);
      return ((await r.json()) as { received: SandboxReceived[] }).received;
    },
  };
}

/** Spies on a console method and returns the JSON log lines written through it. */
export function captureLogs(level: "error" | "warn" | "log" = "error") {
  const spy = vi.spyOn(console, level).mockImplementation(() => {});
  return {
    spy,
    /** Raw lines, as written. */
    lines: () => spy.mock.calls.map((args) => args.map(String).join(" ")),
    /** Parsed structured events. */
    events: () =>
      spy.mock.calls.flatMap((args) => {
        try {
          return [JSON.parse(String(args[0])) as Record<string, unknown>];
        } catch {
          return [];
        }
      }),
  };
}
