/**
 * Checks the two KV adapters of the token CLI against each other: `node scripts/kv-adapter-check.ts`.
 * The `--remote` adapter (`wrangler kv key …` subprocesses) cannot reach Cloudflare here, so it is
 * pointed at a temporary local state with `--local --persist-to`: same subprocesses, same argument
 * building and output parsing, only the target differs. Every record one adapter writes through
 * src/auth/tokens.ts must read back identically through the other, which also shows that the CLI's
 * `--local` store is wrangler's own local state. Last, a real `--remote` write without a wrangler
 * login (none here) must say what is wrong and print neither the record nor its hash; and the
 * placeholder namespace ids of wrangler.toml are refused before any wrangler runs.
 * Last line: `kv adapters: N passed, M failed`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { createToken, getTokenById, hashSecret, listTokens, revokeToken } from "../src/auth/tokens.ts";
import { check, checklist } from "./lib/cli.ts";
import { checkRemoteBinding, openLocalKv, wranglerKv } from "./lib/kv.ts";

const state = mkdtempSync(path.join(tmpdir(), "village-edge-kv-"));
const viaWrangler = wranglerKv("TOKENS", { remote: false, persistTo: state });
const { step, summary } = checklist("kv adapters");
const same = (a: unknown, b: unknown, what: string) =>
  check(JSON.stringify(a) === JSON.stringify(b), `${what}: ${JSON.stringify(a)} != ${JSON.stringify(b)}`);

async function withProxy<T>(
  fn: (kv: Awaited<ReturnType<typeof openLocalKv>>["kv"]) => Promise<T>,
): Promise<T> {
  const local = await openLocalKv("TOKENS", state);
  try {
    return await fn(local.kv);
  } finally {
    await local.dispose();
  }
}

try {
  let first = { id: "", secret: "" };
  await step("created through getPlatformProxy, read through wrangler kv key get/list", async () => {
    const made = await withProxy((kv) =>
      createToken(kv, { name: "first", scopes: ["users:write"], domains: ["example.com"] }),
    );
    first = { id: made.record.id, secret: made.secret };
    const index = await getTokenById(viaWrangler, first.id);
    same(index?.hash, await hashSecret(first.secret), "hash");
    same(index?.domains, ["example.com"], "domains");
    const listed = await listTokens(viaWrangler);
    same(
      listed.map((t) => [t.id, t.name]),
      [[first.id, "first"]],
      "list",
    );
    check((await viaWrangler.get("token:nothing-here", "text")) === null, "a missing key is not null");
  });

  await step(
    "created through wrangler kv key put (metadata, expiration), read through the proxy",
    async () => {
      const made = await createToken(viaWrangler, {
        name: "second",
        scopes: ["audit:read"],
        expiresAt: new Date(Date.now() + 86_400_000),
      });
      const [index, listed, hashRecord] = await withProxy(async (kv) => [
        await getTokenById(kv, made.record.id),
        await listTokens(kv),
        await kv.list({ prefix: "token:" }),
      ]);
      same(index?.expires_at, made.record.expires_at, "expires_at");
      const summary = (listed as Awaited<ReturnType<typeof listTokens>>).find((t) => t.id === made.record.id);
      same(summary?.scopes, ["audit:read"], "metadata scopes");
      const key = (hashRecord as { keys: { name: string; expiration?: number }[] }).keys.find(
        (k) => k.name === `token:${(index as { hash: string }).hash}`,
      );
      same(key?.expiration, Math.floor(Date.parse(made.record.expires_at ?? "") / 1000) + 60, "expiration");
    },
  );

  await step("revoked through wrangler kv key delete/put, seen revoked by the proxy", async () => {
    const revoked = await revokeToken(viaWrangler, first.id);
    check(revoked?.revoked_at, "no revoked_at");
    const [index, hashValue] = await withProxy(async (kv) => [
      await getTokenById(kv, first.id),
      await kv.get(`token:${await hashSecret(first.secret)}`, "text"),
    ]);
    same((index as { revoked_at?: string } | null)?.revoked_at, revoked.revoked_at, "revoked_at");
    check(hashValue === null, "the hash record is still there");
  });
  const loggedOut = !process.env.CLOUDFLARE_API_TOKEN;
  await step("--remote without a login says so, and prints neither the record nor its hash", async () => {
    if (!loggedOut) return console.log("       (skipped: CLOUDFLARE_API_TOKEN is set)");
    const hash = "ab".repeat(32);
    const record = JSON.stringify({ id: "tok_0123456789abcdef", hash, name: "remote check" });
    let message = "";
    await wranglerKv("TOKENS", { remote: true })
      .put(`token:${hash}`, record)
      .catch((err: Error) => {
        message = err.message;
      });
    check(message.includes("not logged in"), `no login hint in: ${message}`);
    check(!message.includes(hash) && !message.includes("remote check"), `the record leaked: ${message}`);
  });
  await step(
    "--remote refuses wrangler.toml's placeholder namespace id before running wrangler",
    async () => {
      const message = await checkRemoteBinding("TOKENS").then(
        () => "",
        (err: Error) => err.message,
      );
      check(
        /placeholder .*wrangler kv namespace create TOKENS/.test(message),
        `got: ${message || "no error"}`,
      );
    },
  );
} finally {
  rmSync(state, { recursive: true, force: true });
}

process.exitCode = summary();
