import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/** The canary Village key of this run, shared by the global setup and the reporter's log scan. */
process.env.VILLAGE_EDGE_CANARY_KEY ??= `canary-village-key-${crypto.randomUUID()}`;
// wrangler.toml requires the VILLAGE_API_KEY secret and wrangler warns when it is not set; the
// tests bind it below (the canary), so tell wrangler's check the same value.
process.env.VILLAGE_API_KEY ??= process.env.VILLAGE_EDGE_CANARY_KEY;
// Offline, miniflare's look-up of Request.cf data fails with a stack trace: use its fallback.
process.env.CLOUDFLARE_CF_FETCH_ENABLED ??= "false";

/** The audit signing key of this run (`<kid>:<base64>`), a fresh one each run; wrangler's check sees it too. */
process.env.AUDIT_SIGNING_KEY ??= `test:${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64")}`;
const AUDIT_SIGNING_KEY = process.env.AUDIT_SIGNING_KEY;

import { unstable_readConfig } from "wrangler";
import { CONTRACT_LINE } from "./test/contract.ts";
import { filterRuntimeOutput } from "./test/runtime-output.ts";

// wrangler's info lines ("Using secrets defined in process.env", once per file) are not news.
process.env.WRANGLER_LOG ??= "warn";
// workerd's own output: scanned for secrets, its known noise dropped (see the module).
filterRuntimeOutput();

/**
 * Many tests change the same demo users, so the suite relaxes every rate limiter. Each one is
 * also bound as `STRICT_<NAME>` with its real limit from wrangler.toml, for the rate-limit tests.
 */
function rateLimiters() {
  const out: Record<string, { namespace_id: string; simple: { limit: number; period: 10 | 60 } }> = {};
  for (const rl of unstable_readConfig({ config: "./wrangler.toml" }).ratelimits ?? []) {
    out[rl.name] = { namespace_id: rl.namespace_id, simple: { limit: 100_000, period: rl.simple.period } };
    out[`STRICT_${rl.name}`] = {
      namespace_id: `${rl.namespace_id}-strict`,
      simple: { limit: rl.simple.limit, period: rl.simple.period },
    };
  }
  return out;
}

/**
 * Tests run inside workerd. The global setup starts the local Village sandbox on loopback;
 * its URL and a canary key are handed to the Worker's bindings here.
 */
export default defineConfig({
  plugins: [
    cloudflareTest(({ inject }) => ({
      wrangler: { configPath: "./wrangler.toml" },
      miniflare: {
        bindings: {
          VILLAGE_API_BASE: inject<string>("sandboxUrl"),
          VILLAGE_NETWORK_ID: inject<string>("sandboxNetworkId"),
          VILLAGE_API_KEY: inject<string>("sandboxApiKey"),
          AUDIT_SIGNING_KEY,
        },
        ratelimits: rateLimiters(),
      },
    })),
  ],
  test: {
    globalSetup: ["./test/global-setup.ts"],
    include: ["test/**/*.test.ts"],
    setupFiles: ["./test/setup.ts"],
    // A line per file; console output only from failing tests (the summary reporter's secret
    // canary still sees every line: vitest hands all of them to every reporter).
    silent: "passed-only",
    // The contract check's data line is for the summary reporter, not for people.
    onConsoleLog: (log) => !log.startsWith(CONTRACT_LINE),
    reporters: ["default", "./test/summary-reporter.ts"],
    testTimeout: 20_000,
    // One line per file: slow tests are not listed under it (durations are in the file's line).
    slowTestThreshold: 60_000,
  },
});
