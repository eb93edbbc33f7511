import { defineConfig } from "vitest/config";

/**
 * Real-browser tests, run in Node (not workerd) by `npm run test:browser`: Debian's chromium
 * driven by playwright-core against the Worker, the local Village sandbox, a stand-in identity
 * provider and the example page, all on 127.0.0.1 (scripts/profile-demo.ts).
 */
export default defineConfig({
  test: {
    include: ["test/browser/**/*.spec.ts"],
    environment: "node",
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 180_000,
    teardownTimeout: 30_000,
  },
});
