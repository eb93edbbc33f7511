import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

/** The canary Village key of this run, shared by the global setup and the reporter's log scan. */
process.env.VILLAGE_EDGE_CANARY_KEY ??= `canary-village-key-${crypto.randomUUID()}`;

import { unstable_readConfig } from "wrangler";

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
        },
        ratelimits: rateLimiters(),
      },
    })),
  ],
  test: {
    globalSetup: ["./test/global-setup.ts"],
    include: ["test/**/*.test.ts"],
    setupFiles: ["./test/setup.ts"],
    reporters: ["default", "./test/summary-reporter.ts"],
    testTimeout: 20_000,
  },
});
