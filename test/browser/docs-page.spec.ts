/**
 * The partner API reference (`GET /docs`) in a real browser (Debian chromium via playwright-core)
 * on `npm start` (wrangler dev, its static assets and its build step), offline: every operation
 * of /openapi.json is on the page, nothing is requested from another origin, and the page's
 * Content-Security-Policy is never violated.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { type Browser, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevStack, freePort, startDevStack, stopGroup } from "../../scripts/lib/stack.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"];

// biome-ignore lint/suspicious/noExplicitAny: walks a parsed JSON document
type Json = Record<string, any>;
const contract = JSON.parse(
  readFileSync(new URL("../../src/meta/openapi.json", import.meta.url), "utf8"),
) as Json;

let stack: DevStack;
let browser: Browser;
const state = mkdtempSync(path.join(tmpdir(), "village-edge-docs-"));

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ensure-chromium.sh`);
  // This npm start leaves its state file in the temp folder, not beside a developer's own.
  process.env.VILLAGE_EDGE_STATE_FILE = path.join(state, "dev-server.json");
  stack = startDevStack({ port: await freePort(), sandboxPort: await freePort(), state });
  await stack.ready;
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 60_000 });
});

afterAll(async () => {
  await browser?.close();
  await stopGroup(stack?.child.pid);
  rmSync(state, { recursive: true, force: true });
});

describe("GET /docs", () => {
  it("renders every operation of /openapi.json, offline, within its Content-Security-Policy", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const elsewhere: string[] = [];
    const problems: string[] = [];
    page.on("request", (req) => {
      if (!req.url().startsWith(stack.origin) && !req.url().startsWith("data:")) elsewhere.push(req.url());
    });
    page.on("console", (msg) => {
      const text = msg.text();
      // A failed load is reported by URL below; every other error and any policy violation here.
      if (/^Failed to load resource/.test(text)) return;
      if (msg.type() === "error" || /Content Security Policy/i.test(text)) problems.push(text);
    });
    page.on("pageerror", (err) => problems.push(err.message));
    page.on("response", (r) => {
      if (r.status() >= 400) problems.push(`${r.status()} ${r.url()}`);
    });

    const res = await page.goto(`${stack.origin}/docs`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()["content-security-policy"]).toContain("default-src 'none'");

    const operations = Object.entries(contract.paths as Json).flatMap(([route, item]) =>
      Object.entries(item as Json).map(([method, op]) => ({ method, route, summary: (op as Json).summary })),
    );
    expect(operations.length).toBeGreaterThanOrEqual(7);
    await page.getByText(contract.info.title, { exact: true }).first().waitFor({ timeout: 30_000 });
    for (const op of operations) {
      // RapiDoc's read mode: a section per operation, headed by its summary (open shadow DOM).
      await expect
        .poll(() => page.getByText(op.summary, { exact: true }).count(), { timeout: 15_000 })
        .toBeGreaterThan(0);
    }
    expect(elsewhere).toEqual([]);
    expect(problems).toEqual([]);
    await context.close();
  });

  it("serves the renderer as a static asset with nosniff, and unknown paths as 404 problem+json", async () => {
    const js = await fetch(`${stack.origin}/docs/rapidoc-min.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get("content-type")).toMatch(/javascript/);
    expect(js.headers.get("x-content-type-options")).toBe("nosniff");
    await js.arrayBuffer();
    const missing = await fetch(`${stack.origin}/docs/missing.js`);
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toBe("application/problem+json");
    await missing.arrayBuffer();
  });
});
