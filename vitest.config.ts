import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

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
      },
    })),
  ],
  test: {
    globalSetup: ["./test/global-setup.ts"],
    include: ["test/**/*.test.ts"],
    reporters: ["default", "./test/summary-reporter.ts"],
    testTimeout: 20_000,
  },
});
