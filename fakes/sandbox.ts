/**
 * Local fake of Village's Patch User API (`PATCH /networks/:network_id/users/:user_email`),
 * multi-tenant so parallel tests don't collide, with a `/_sandbox` control API and fault injection.
 * Run: `node fakes/sandbox.ts [--port 8788]`. Uses node: built-ins only; binds 127.0.0.1 only.
 */

import { randomBytes } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { argValue as arg, closeServer, isMain } from "../scripts/lib/cli.ts";
import type { Fault, ReceivedRequest, SandboxUser } from "./sandbox-types.ts";

export type { Fault, ReceivedRequest, SandboxUser };

/** A running sandbox. `close()` destroys every open socket (hung ones included). */
export interface Sandbox {
  url: string;
  port: number;
  close(): Promise<void>;
  defaultNetwork: { id: string; apiKey: string };
}

/** Three demo users seeded into every new network unless users are given. */
export const DEMO_USERS: SandboxUser[] = [
  { email: "ada@example.com", first_name: "Ada", last_name: "Lovelace", phone_number: "+442071234567" },
  { email: "grace@example.com", first_name: "Grace", last_name: "Hopper", phone_number: "+12025550143" },
  { email: "alan@example.org", first_name: "Alan", last_name: "Turing", phone_number: "+441615550199" },
];

interface Network {
  apiKey: string;
  users: Map<string, SandboxUser>;
  received: ReceivedRequest[];
  faults: Fault[];
}

const MAX_BODY = 64 * 1024;
const MAX_DRAIN = 16 * 1024 * 1024; // past this, an oversized upload is cut off instead of drained
const PATCH_FIELDS = ["first_name", "last_name", "phone_number"];
const hex = (n: number): string => randomBytes(n).toString("hex");
const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

function send(
  res: ServerResponse,
  status: number,
  body?: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  const text = body === undefined ? "" : JSON.stringify(body);
  res.writeHead(status, { ...(text ? { "content-type": "application/json" } : {}), ...headers });
  res.end(text);
}

function decodeOnce(s: string): string | undefined {
  try {
    return decodeURIComponent(s);
  } catch {
    return undefined;
  }
}

/** Reads at most MAX_BODY bytes. TOO_LARGE: drained, answer 413. ABORTED: the client went away. */
const TOO_LARGE = Symbol("too-large");
const ABORTED = Symbol("aborted");
function readBody(req: IncomingMessage): Promise<string | typeof TOO_LARGE | typeof ABORTED> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
      else if (size > MAX_DRAIN) req.destroy();
    });
    req.on("end", () => resolve(size > MAX_BODY ? TOO_LARGE : Buffer.concat(chunks).toString("utf8")));
    req.on("error", () => resolve(size > MAX_BODY ? TOO_LARGE : ABORTED));
    req.on("close", () => resolve(size > MAX_BODY ? TOO_LARGE : ABORTED)); // no-op once resolved
  });
}

function isUser(u: unknown): u is SandboxUser {
  return isObj(u) && ["email", ...PATCH_FIELDS].every((k) => typeof u[k] === "string");
}

function isFault(f: unknown): f is Fault {
  if (!isObj(f)) return false;
  const num = (v: unknown) => v === undefined || (typeof v === "number" && Number.isFinite(v) && v >= 0);
  const okStatus = (v: unknown) =>
    v === undefined || (Number.isInteger(v) && (v as number) >= 200 && (v as number) <= 599);
  if (f.action === undefined) {
    return (
      f.status !== undefined &&
      okStatus(f.status) &&
      num(f.delayMs) &&
      num(f.bodyBytes) &&
      (f.body === undefined || typeof f.body === "string") &&
      (f.contentType === undefined || typeof f.contentType === "string") &&
      (f.headers === undefined ||
        (isObj(f.headers) && Object.values(f.headers).every((v) => typeof v === "string")))
    );
  }
  if (f.action === "hang" || f.action === "reset") return true;
  if (f.action === "redirect")
    return (
      typeof f.location === "string" &&
      (f.status === undefined || [301, 302, 307, 308].includes(f.status as number))
    );
  if (f.action === "slow-body")
    return (
      okStatus(f.status) &&
      num(f.chunks) &&
      num(f.intervalMs) &&
      f.chunks !== undefined &&
      f.intervalMs !== undefined
    );
  return false;
}

/** Plays a fault on `res`. Timers are cleared when the response/socket closes. */
function applyFault(fault: Fault, req: IncomingMessage, res: ServerResponse): void {
  const timers: ReturnType<typeof setTimeout>[] = [];
  const later = (ms: number, fn: () => void) =>
    timers.push(
      setTimeout(() => {
        try {
          fn();
        } catch {
          res.destroy();
        } // e.g. an invalid header name in a fault: cut the connection, never crash
      }, ms),
    );
  res.on("close", () => timers.forEach(clearTimeout));
  if ("action" in fault) {
    if (fault.action === "hang") return; // keep the socket open; close() or the client ends it
    if (fault.action === "reset") {
      const s = req.socket as Socket & { resetAndDestroy?: () => void };
      if (s.resetAndDestroy) s.resetAndDestroy();
      else s.destroy();
      return;
    }
    if (fault.action === "redirect") {
      send(res, fault.status ?? 302, undefined, { location: fault.location, "content-length": "0" });
      return;
    }
    // slow-body: headers now, one whitespace chunk per interval, then a valid JSON body at the end.
    res.writeHead(fault.status ?? 201, { "content-type": "application/json" });
    res.flushHeaders();
    let left = fault.chunks;
    const tick = () => {
      if (res.destroyed) return;
      if (left-- > 0) {
        res.write(" ".repeat(16));
        later(fault.intervalMs, tick);
      } else res.end('{"status":"queued"}');
    };
    return void later(fault.intervalMs, tick);
  }
  later(fault.delayMs ?? 0, () => {
    if (res.destroyed) return;
    res.writeHead(fault.status, {
      "content-type": fault.contentType ?? "application/json",
      ...fault.headers,
    });
    if (fault.bodyBytes === undefined) return void res.end(fault.body ?? "");
    let left = fault.bodyBytes;
    const chunk = Buffer.alloc(16 * 1024, "x");
    const pump = () => {
      while (left > 0 && !res.destroyed) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n)))
          return void res.once("drain", pump);
      }
      if (!res.destroyed) res.end();
    };
    pump();
  });
}

/** Starts the sandbox on 127.0.0.1 (port 0 = random) with one default network seeded with DEMO_USERS or `opts.users`. */
export async function startSandbox(
  opts: {
    port?: number;
    networkId?: string;
    apiKey?: string;
    users?: SandboxUser[];
    log?: (line: string) => void;
  } = {},
): Promise<Sandbox> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const networks = new Map<string, Network>();
  const addNetwork = (id: string, apiKey: string, users: SandboxUser[]): void => {
    networks.set(id, {
      apiKey,
      users: new Map(users.map((u) => [u.email, { ...u }])),
      received: [],
      faults: [],
    });
  };
  const defaultNetwork = { id: opts.networkId ?? "sandbox-network", apiKey: opts.apiKey ?? hex(24) };
  addNetwork(defaultNetwork.id, defaultNetwork.apiKey, opts.users ?? DEMO_USERS);

  async function patchUser(
    req: IncomingMessage,
    res: ServerResponse,
    rawPath: string,
    rawNet: string,
    rawEmail: string,
  ): Promise<void> {
    const at = new Date().toISOString();
    const read = await readBody(req);
    if (read === ABORTED) return;
    const body = read === TOO_LARGE ? undefined : read;
    const netId = decodeOnce(rawNet);
    const email = decodeOnce(rawEmail);
    const net = netId === undefined ? undefined : networks.get(netId);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : String(v);
    const authOk = net !== undefined && req.headers.authorization === `Bearer ${net.apiKey}`;
    if (headers.authorization !== undefined) headers.authorization = authOk ? "Bearer <redacted>" : "<wrong>";
    const record = (status: number | string): void => {
      net?.received.push({
        at,
        method: req.method ?? "",
        path: rawPath,
        email: email ?? rawEmail,
        headers,
        body: body ?? "",
        status,
      });
      const shown =
        body === undefined ? "<too large>" : body.length > 200 ? `${body.slice(0, 200)}...` : body;
      log(`[sandbox] ${req.method} ${netId ?? rawNet}/${email ?? rawEmail} ${shown} -> ${status}`);
    };
    const answer = (status: number, payload?: unknown, extra?: Record<string, string>): void => {
      record(status);
      send(res, status, payload, extra);
    };

    if (req.method !== "PATCH") return answer(405, { error: "method not allowed" }, { allow: "PATCH" });
    if (body === undefined) return answer(413, { error: "payload too large" }, { connection: "close" });
    const fault = net?.faults.shift();
    if (fault) {
      record(`fault:${"action" in fault ? fault.action : "status"}`);
      return applyFault(fault, req, res);
    }
    if (netId === undefined || email === undefined) return answer(400, { error: "malformed path encoding" });
    if (!net) return answer(404, { error: "network not found" });
    if (!authOk) return answer(401, { error: "unauthorized" });
    if (!(req.headers["content-type"] ?? "").toLowerCase().startsWith("application/json"))
      return answer(415, { error: "content-type must be application/json" });
    if (!(req.headers.accept ?? "").toLowerCase().includes("application/json"))
      return answer(406, { error: "accept must include application/json" });
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      return answer(400, { error: "invalid body", detail: "not JSON" });
    }
    if (!isObj(parsed)) return answer(400, { error: "invalid body", detail: "expected a JSON object" });
    const change = parsed;
    const keys = Object.keys(change);
    if (keys.length === 0)
      return answer(400, { error: "invalid body", detail: "at least one field is required" });
    const bad = keys.filter((k) => !PATCH_FIELDS.includes(k) || typeof change[k] !== "string");
    if (bad.length)
      return answer(400, {
        error: "invalid body",
        detail: `unknown or non-string fields: ${bad.join(", ")}`,
        allowed: PATCH_FIELDS,
      });
    const user = net.users.get(email);
    if (!user) return answer(404, { error: "user not found" });
    Object.assign(user, change);
    answer(201, { status: "queued" });
  }

  async function control(req: IncomingMessage, res: ServerResponse, parts: string[]): Promise<void> {
    const m = req.method;
    const body = await readBody(req);
    if (body === ABORTED) return;
    if (body === TOO_LARGE) return send(res, 413, { error: "payload too large" }, { connection: "close" });
    let json: unknown = {};
    if (body.trim()) {
      try {
        json = JSON.parse(body);
      } catch {
        return send(res, 400, { error: "invalid JSON" });
      }
    }
    const p = parts.join("/");
    if (p === "health")
      return m === "GET" ? send(res, 200, { ok: true }) : send(res, 405, { error: "method not allowed" });
    if (p === "received")
      return m === "GET"
        ? send(res, 200, { received: networks.get(defaultNetwork.id)?.received ?? [] })
        : send(res, 405, { error: "method not allowed" });
    if (p === "networks") {
      if (m !== "POST") return send(res, 405, { error: "method not allowed" });
      const users = isObj(json) ? json.users : undefined;
      if (!isObj(json) || (users !== undefined && !(Array.isArray(users) && users.every(isUser)))) {
        return send(res, 400, { error: "expected { users?: SandboxUser[] }" });
      }
      const id = `net-${hex(6)}`;
      const apiKey = hex(24);
      addNetwork(id, apiKey, (users as SandboxUser[] | undefined) ?? DEMO_USERS);
      return send(res, 201, { network_id: id, api_key: apiKey });
    }
    if (parts[0] !== "networks" || parts.length < 3) return send(res, 404, { error: "not found" });
    const id = decodeOnce(parts[1]);
    const net = id === undefined ? undefined : networks.get(id);
    if (!net) return send(res, 404, { error: "network not found" });
    const rest = parts.slice(2);
    if (rest.length === 1 && rest[0] === "received") {
      if (m === "GET") return send(res, 200, { received: net.received });
      if (m === "DELETE") {
        const cleared = net.received.length;
        net.received.length = 0;
        return send(res, 200, { cleared });
      }
      return send(res, 405, { error: "method not allowed" });
    }
    if (rest.length === 1 && rest[0] === "users" && m === "POST") {
      // Adds (or replaces, by email) users in an existing network, e.g. npm start's default one.
      const users = isObj(json) ? json.users : undefined;
      if (!Array.isArray(users) || !users.every(isUser))
        return send(res, 400, { error: "expected { users: SandboxUser[] }" });
      for (const u of users) net.users.set(u.email, { ...u });
      return send(res, 200, { added: users.length, users: net.users.size });
    }
    if (rest[0] === "users" && rest.length <= 2) {
      if (m !== "GET") return send(res, 405, { error: "method not allowed" });
      if (rest.length === 1) return send(res, 200, { users: [...net.users.values()] });
      const email = decodeOnce(rest[1]);
      const user = email === undefined ? undefined : net.users.get(email);
      return user ? send(res, 200, user) : send(res, 404, { error: "user not found" });
    }
    if (rest.length === 1 && rest[0] === "faults") {
      if (m !== "POST") return send(res, 405, { error: "method not allowed" });
      const faults = isObj(json) ? json.faults : undefined;
      if (!Array.isArray(faults) || !faults.every(isFault))
        return send(res, 400, { error: "expected { faults: Fault[] }" });
      net.faults.push(...faults);
      return send(res, 200, { pending: net.faults.length });
    }
    send(res, 404, { error: "not found" });
  }

  const server = createServer((req, res) => {
    const rawPath = req.url ?? "/";
    const parts = rawPath.split("?")[0].split("/").slice(1);
    let handled: Promise<void>;
    if (parts.length === 4 && parts[0] === "networks" && parts[2] === "users" && parts[1] && parts[3]) {
      handled = patchUser(req, res, rawPath, parts[1], parts[3]);
    } else if (parts[0] === "_sandbox") {
      handled = control(req, res, parts.slice(1));
    } else {
      req.resume();
      handled = Promise.resolve(send(res, 404, { error: "not found" }));
    }
    handled.catch((err: unknown) => {
      log(`[sandbox] internal error: ${err instanceof Error ? err.message : String(err)}`);
      send(res, 500, { error: "sandbox internal error" });
    });
  });
  server.on("clientError", (_err, socket) => {
    if (socket.writable) socket.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    defaultNetwork,
    close: () => closeServer(server),
  };
}

if (isMain(import.meta.url)) {
  const port = Number(arg("port") ?? 8788);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error("usage: node fakes/sandbox.ts [--port 8788]");
    process.exit(2);
  }
  const sb = await startSandbox({ port, networkId: arg("network-id"), apiKey: arg("api-key") });
  console.log(`[sandbox] Village Patch User API fake listening on ${sb.url}`);
  console.log(`[sandbox] default network id: ${sb.defaultNetwork.id}`);
  console.log(`[sandbox] default api key:    ${sb.defaultNetwork.apiKey}  (sandbox-only key)`);
  console.log(`[sandbox] try: curl ${sb.url}/_sandbox/received`);
  const stop = () => {
    void sb.close().then(() => process.exit(0));
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
