/**
 * Smoke test for fakes/sandbox.ts: `node scripts/sandbox-smoke.ts`.
 * Prints `sandbox smoke: N passed, M failed`; exits non-zero on any failure.
 */
import assert from "node:assert/strict";
import type { Fault, ReceivedRequest, SandboxUser } from "../fakes/sandbox.ts";
import { DEMO_USERS, startSandbox } from "../fakes/sandbox.ts";
import { checklist } from "./lib/cli.ts";

const logs: string[] = [];
const sb = await startSandbox({ log: (line) => logs.push(line) });
const { id: NET, apiKey: KEY } = sb.defaultNetwork;
const JSON_HEADERS = { "content-type": "application/json", accept: "application/json" };

const { step: test, summary } = checklist("sandbox smoke");

function patch(
  email: string,
  body: unknown,
  opts: {
    net?: string;
    key?: string;
    headers?: Record<string, string>;
    signal?: AbortSignal;
    redirect?: RequestRedirect;
  } = {},
): Promise<Response> {
  return fetch(
    `${sb.url}/networks/${encodeURIComponent(opts.net ?? NET)}/users/${encodeURIComponent(email)}`,
    {
      method: "PATCH",
      headers: { ...JSON_HEADERS, authorization: `Bearer ${opts.key ?? KEY}`, ...opts.headers },
      body: typeof body === "string" ? body : JSON.stringify(body),
      signal: opts.signal,
      redirect: opts.redirect,
    },
  );
}
async function control<T>(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; json: T }> {
  const res = await fetch(`${sb.url}/_sandbox${path}`, {
    method,
    headers: JSON_HEADERS,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: (text ? JSON.parse(text) : undefined) as T };
}
const received = async (net = NET) =>
  (await control<{ received: ReceivedRequest[] }>("GET", `/networks/${net}/received`)).json.received;
const lastReceived = async (net = NET) => (await received(net)).at(-1);
const addFaults = async (faults: Fault[], net = NET) =>
  assert.equal((await control("POST", `/networks/${net}/faults`, { faults })).status, 200);

await test("health", async () => {
  assert.deepEqual(await control("GET", "/health"), { status: 200, json: { ok: true } });
});

await test("valid PATCH -> 201 queued, user updated, request recorded with redacted key", async () => {
  const res = await patch("ada@example.com", { phone_number: "+15555555555" });
  assert.equal(res.status, 201);
  assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
  assert.deepEqual(await res.json(), { status: "queued" });
  const user = await control<SandboxUser>("GET", `/networks/${NET}/users/ada%40example.com`);
  assert.deepEqual(user.json, { ...DEMO_USERS[0], phone_number: "+15555555555" });
  const rec = await lastReceived();
  if (!rec) throw new Error("nothing recorded");
  assert.equal(rec.status, 201);
  assert.equal(rec.email, "ada@example.com");
  assert.equal(rec.path, `/networks/${NET}/users/ada%40example.com`);
  assert.equal(rec.headers.authorization, "Bearer <redacted>");
  assert.equal(rec.body, '{"phone_number":"+15555555555"}');
  assert.ok(!JSON.stringify(await received()).includes(KEY), "api key must not appear in received");
  assert.ok(logs.some((l) => l.includes(`PATCH ${NET}/ada@example.com`) && l.endsWith("-> 201")));
  assert.ok(DEMO_USERS[0].phone_number !== "+15555555555", "DEMO_USERS must not be mutated");
});

await test("wrong key -> 401, recorded as <wrong>", async () => {
  const res = await patch("ada@example.com", { first_name: "X" }, { key: "nope" });
  assert.equal(res.status, 401);
  assert.deepEqual(await res.json(), { error: "unauthorized" });
  const rec = await lastReceived();
  assert.equal(rec?.status, 401);
  assert.equal(rec?.headers.authorization, "<wrong>");
});

await test("unknown user -> 404; email decoded exactly once", async () => {
  const res = await patch("nobody@example.com", { first_name: "X" });
  assert.equal(res.status, 404);
  assert.deepEqual(await res.json(), { error: "user not found" });
  const twice = await fetch(`${sb.url}/networks/${NET}/users/ada%2540example.com`, {
    method: "PATCH",
    headers: { ...JSON_HEADERS, authorization: `Bearer ${KEY}` },
    body: '{"first_name":"X"}',
  });
  assert.equal(twice.status, 404);
  assert.equal((await lastReceived())?.email, "ada%40example.com");
});

await test("unknown network -> 404, malformed encoding -> 400", async () => {
  const res = await patch("ada@example.com", { first_name: "X" }, { net: "no-such-net" });
  assert.equal(res.status, 404);
  assert.deepEqual(await res.json(), { error: "network not found" });
  const bad = await fetch(`${sb.url}/networks/${NET}/users/ada%E0%A4%A`, {
    method: "PATCH",
    headers: { ...JSON_HEADERS, authorization: `Bearer ${KEY}` },
    body: '{"first_name":"X"}',
  });
  assert.equal(bad.status, 400);
});

await test("415 / 406 / invalid bodies -> 400 / 405 / 413 / 404 elsewhere", async () => {
  assert.equal(
    (await patch("ada@example.com", { first_name: "X" }, { headers: { "content-type": "text/plain" } }))
      .status,
    415,
  );
  assert.equal(
    (await patch("ada@example.com", { first_name: "X" }, { headers: { accept: "text/html" } })).status,
    406,
  );
  for (const body of [
    "{",
    "[]",
    "null",
    "{}",
    { email: "x@y.z" },
    { first_name: 3 },
    { first_name: "A", segment: "vip" },
  ]) {
    const res = await patch("ada@example.com", body);
    assert.equal(res.status, 400, `body ${JSON.stringify(body)}`);
    assert.equal(((await res.json()) as { error: string }).error, "invalid body");
  }
  const get = await fetch(`${sb.url}/networks/${NET}/users/ada%40example.com`);
  assert.equal(get.status, 405);
  await get.arrayBuffer();
  assert.equal((await patch("ada@example.com", { first_name: "x".repeat(70 * 1024) })).status, 413);
  assert.equal((await fetch(`${sb.url}/elsewhere`)).status, 404);
  assert.equal(
    (await control<SandboxUser>("GET", `/networks/${NET}/users/ada%40example.com`)).json.first_name,
    "Ada",
  );
});

await test("fresh network via control API is isolated", async () => {
  const users: SandboxUser[] = [
    { email: "solo@example.net", first_name: "So", last_name: "Lo", phone_number: "+33123456789" },
  ];
  const { status, json } = await control<{ network_id: string; api_key: string }>("POST", "/networks", {
    users,
  });
  assert.equal(status, 201);
  assert.match(json.network_id, /^net-[0-9a-f]+$/);
  assert.notEqual(json.api_key, KEY);
  assert.equal(
    (await patch("solo@example.net", { last_name: "Z" }, { net: json.network_id })).status,
    401,
    "default key must not work",
  );
  assert.equal(
    (await patch("solo@example.net", { last_name: "Z" }, { net: json.network_id, key: json.api_key })).status,
    201,
  );
  assert.equal(
    (await control<SandboxUser>("GET", `/networks/${json.network_id}/users/solo%40example.net`)).json
      .last_name,
    "Z",
  );
  assert.equal((await received(json.network_id)).length, 2);
  const seeded = await control<{ network_id: string }>("POST", "/networks");
  assert.equal(
    (await control<{ users: SandboxUser[] }>("GET", `/networks/${seeded.json.network_id}/users`)).json.users
      .length,
    DEMO_USERS.length,
  );
  const more: SandboxUser[] = [
    { email: "duo@example.net", first_name: "Du", last_name: "O", phone_number: "+33123456780" },
    { ...users[0], first_name: "Solo" },
  ];
  const added = await control<{ added: number; users: number }>(
    "POST",
    `/networks/${json.network_id}/users`,
    { users: more },
  );
  assert.deepEqual([added.status, added.json], [200, { added: 2, users: 2 }]);
  assert.equal(
    (await control<SandboxUser>("GET", `/networks/${json.network_id}/users/solo%40example.net`)).json
      .first_name,
    "Solo",
  );
  assert.equal(
    (await control("POST", `/networks/${json.network_id}/users`, { users: [{ email: "x" }] })).status,
    400,
  );
  assert.equal((await control("DELETE", `/networks/${json.network_id}/received`)).status, 200);
  assert.equal((await received(json.network_id)).length, 0);
  assert.equal(
    (await control("POST", `/networks/${json.network_id}/faults`, { faults: [{ action: "explode" }] }))
      .status,
    400,
  );
});

await test("fault: hang (client AbortSignal.timeout 300ms)", async () => {
  await addFaults([{ action: "hang" }]);
  const t0 = Date.now();
  await assert.rejects(patch("ada@example.com", { first_name: "H" }, { signal: AbortSignal.timeout(300) }), {
    name: "TimeoutError",
  });
  assert.ok(Date.now() - t0 >= 250);
  assert.equal((await lastReceived())?.status, "fault:hang");
});

await test("fault: reset", async () => {
  await addFaults([{ action: "reset" }]);
  await assert.rejects(patch("ada@example.com", { first_name: "R" }), TypeError);
  assert.equal((await lastReceived())?.status, "fault:reset");
});

await test("fault: redirect is not followed with redirect: manual", async () => {
  await addFaults([{ action: "redirect", status: 307, location: "https://evil.example/steal" }]);
  const res = await patch("ada@example.com", { first_name: "D" }, { redirect: "manual" });
  assert.equal(res.status, 307);
  assert.equal(res.headers.get("location"), "https://evil.example/steal");
  assert.equal((await lastReceived())?.status, "fault:redirect");
});

await test("fault: slow-body sends headers at once, body later", async () => {
  await addFaults([{ action: "slow-body", chunks: 3, intervalMs: 60 }]);
  const t0 = Date.now();
  const res = await patch("ada@example.com", { first_name: "S" });
  assert.equal(res.status, 201);
  assert.ok(Date.now() - t0 < 150, "headers should arrive before the body");
  assert.deepEqual(await res.json(), { status: "queued" });
  assert.ok(Date.now() - t0 >= 4 * 60 - 20, "body should take chunks+1 intervals");
  assert.equal((await lastReceived())?.status, "fault:slow-body");
});

await test("fault: status 503 with delay, custom body, huge streamed body; then normal again", async () => {
  await addFaults([
    {
      status: 503,
      body: "upstream down, key=secret",
      contentType: "text/plain",
      headers: { "retry-after": "1" },
      delayMs: 50,
    },
    { status: 500, bodyBytes: 1024 * 1024 },
  ]);
  const res = await patch("ada@example.com", { first_name: "E" });
  assert.equal(res.status, 503);
  assert.equal(res.headers.get("retry-after"), "1");
  assert.equal(await res.text(), "upstream down, key=secret");
  const big = await patch("ada@example.com", { first_name: "E" });
  assert.equal(big.status, 500);
  assert.equal((await big.arrayBuffer()).byteLength, 1024 * 1024);
  assert.equal((await patch("ada@example.com", { first_name: "E" })).status, 201);
  assert.deepEqual(
    (await received()).slice(-3).map((r) => r.status),
    ["fault:status", "fault:status", 201],
  );
});

await test("close() ends promptly with a hung connection open", async () => {
  await addFaults([{ action: "hang" }]);
  const pending = patch("ada@example.com", { first_name: "H" }).then(
    () => "answered",
    () => "rejected",
  );
  while ((await lastReceived())?.status !== "fault:hang") await new Promise((r) => setTimeout(r, 10));
  const t0 = Date.now();
  await sb.close();
  assert.ok(Date.now() - t0 < 1000, `close took ${Date.now() - t0}ms`);
  assert.equal(await pending, "rejected");
});

process.exitCode = summary();
