/**
 * Everything the profile-page example needs, on 127.0.0.1 and in memory: the local Village
 * sandbox, the stand-in identity provider, the Worker (built from wrangler.toml by wrangler's
 * test harness, storage in memory only) and the page served from three origins:
 * `app` (allowed by CORS; the origin-bound token's origin), `partner` (allowed by CORS, not
 * the token's) and `stranger` (not allowed). Used by the browser tests; run it by hand with
 * `node scripts/profile-demo.ts` and open the printed links.
 */
import { fileURLToPath } from "node:url";
import { createTestHarness } from "wrangler";
import { type Sandbox, startSandbox } from "../fakes/sandbox.ts";
import { type StaticServer, serveStatic } from "../fakes/static-server.ts";
import { startTestIdp, type TestIdp } from "../fakes/test-idp.ts";
import { createToken, type KvLike } from "../src/auth/tokens.ts";
import { isMain } from "./lib/cli.ts";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const PAGE_DIR = fileURLToPath(new URL("../examples/profile-page/", import.meta.url));

export interface ProfileDemo {
  sandbox: Sandbox;
  idp: TestIdp;
  /** The Worker's base URL. */
  worker: string;
  pages: { app: StaticServer; partner: StaticServer; stranger: StaticServer };
  /** Mints a real token in the Worker's TOKENS namespace and returns its secret. */
  mint(scopes: string[], origins?: string[]): Promise<string>;
  /** The page URL on `origin`, configured with the Worker and a credential. */
  pageUrl(origin: string, token: string, email?: string): string;
  close(): Promise<void>;
}

/** Starts the demo; `close()` stops every part that was started, also when start-up fails half-way. */
export async function startProfileDemo(opts: { quiet?: boolean } = {}): Promise<ProfileDemo> {
  const closers: (() => Promise<void>)[] = [];
  const close = async () => {
    for (const fn of closers.reverse()) await fn().catch(() => {});
  };
  try {
    const sandbox = await startSandbox({ port: 0, log: opts.quiet ? () => {} : undefined });
    closers.push(() => sandbox.close());
    const idp = await startTestIdp();
    closers.push(() => idp.close());
    const app = await serveStatic(PAGE_DIR);
    closers.push(() => app.close());
    const partner = await serveStatic(PAGE_DIR);
    closers.push(() => partner.close());
    const stranger = await serveStatic(PAGE_DIR);
    closers.push(() => stranger.close());

    // Offline, miniflare's look-up of Request.cf data fails with a stack trace: use its fallback.
    process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";
    process.env.WRANGLER_SEND_METRICS ??= "false";
    const harness = createTestHarness({
      root: ROOT,
      workers: [
        {
          configPath: "./wrangler.toml",
          vars: {
            VILLAGE_API_BASE: sandbox.url,
            VILLAGE_NETWORK_ID: sandbox.defaultNetwork.id,
            ALLOWED_ORIGINS: `${app.origin},${partner.origin}`,
            AUTH_JWKS_URL: idp.jwksUrl,
            AUTH_ISSUER: idp.issuer,
            AUTH_AUDIENCE: idp.audience,
          },
          secrets: {
            VILLAGE_API_KEY: sandbox.defaultNetwork.apiKey,
            AUDIT_SIGNING_KEY: `demo:${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`,
          },
        },
      ],
    });
    closers.push(() => harness.close());
    const { url } = await harness.listen();
    const worker = url.origin;
    const env = await harness.getWorker<{ TOKENS: KvLike }>().getEnv();

    return {
      sandbox,
      idp,
      worker,
      pages: { app, partner, stranger },
      async mint(scopes, origins) {
        const { secret } = await createToken(env.TOKENS, { name: "profile demo", scopes, origins });
        return secret;
      },
      pageUrl(origin, token, email) {
        const fragment = new URLSearchParams({ api: worker, token });
        if (email) fragment.set("email", email);
        return `${origin}/#${fragment}`;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

if (isMain(import.meta.url)) {
  const demo = await startProfileDemo();
  const jwt = await demo.idp.sign({ sub: "demo-ada", email: "ada@example.com" });
  const bound = await demo.mint(["users:write:first_name", "users:write:last_name"], [demo.pages.app.origin]);
  console.log(`[demo] Worker: ${demo.worker}   Village sandbox: ${demo.sandbox.url}`);
  console.log("[demo] Ada signed in with a JWT (10 minutes):");
  console.log(`  ${demo.pageUrl(demo.pages.app.origin, jwt)}`);
  console.log("[demo] A names-only token bound to the app origin, editing grace@example.com:");
  console.log(`  ${demo.pageUrl(demo.pages.app.origin, bound, "grace@example.com")}`);
  console.log("[demo] The same page on an origin the Worker does not allow (the browser blocks it):");
  console.log(`  ${demo.pageUrl(demo.pages.stranger.origin, jwt)}`);
  console.log(`[demo] See what reached Village: curl ${demo.sandbox.url}/_sandbox/received   (Ctrl-C stops)`);
  const stop = () => void demo.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}
