/**
 * The example profile page in a real browser (Debian chromium via playwright-core) against the
 * Worker, the local Village sandbox and a stand-in identity provider, all on 127.0.0.1.
 * Every refusal is checked at the sandbox: nothing reached Village.
 */
import { existsSync } from "node:fs";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { ReceivedRequest, SandboxUser } from "../../fakes/sandbox.ts";
import { type ProfileDemo, startProfileDemo } from "../../scripts/profile-demo.ts";

const CHROMIUM = "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
];

let demo: ProfileDemo;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/ensure-chromium.sh`);
  demo = await startProfileDemo({ quiet: true });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS, timeout: 60_000 });
});

afterAll(async () => {
  await browser?.close();
  await demo?.close();
});

const network = () => `${demo.sandbox.url}/_sandbox/networks/${demo.sandbox.defaultNetwork.id}`;

/** What reached the Village sandbox since the test started. */
async function received(): Promise<ReceivedRequest[]> {
  const res = await fetch(`${network()}/received`);
  return ((await res.json()) as { received: ReceivedRequest[] }).received;
}

async function villageUser(email: string): Promise<SandboxUser> {
  return (await (await fetch(`${network()}/users/${encodeURIComponent(email)}`)).json()) as SandboxUser;
}

beforeEach(async () => {
  await fetch(`${network()}/received`, { method: "DELETE" });
});

afterEach(async () => {
  for (const context of contexts.splice(0)) await context.close();
});

interface Opened {
  page: Page;
  console: string[];
  /** Bodies of every response the page got from the Worker, to check that no Village key is in one. */
  workerBodies: string[];
}

/** Opens the page on `origin` in a fresh browser context (its own preflight cache). */
async function openPage(origin: string, token: string, email?: string): Promise<Opened> {
  const context = await browser.newContext();
  contexts.push(context);
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  const opened: Opened = { page, console: [], workerBodies: [] };
  page.on("console", (msg) => opened.console.push(msg.text()));
  page.on("response", async (res) => {
    if (res.url().startsWith(demo.worker) && res.request().method() !== "OPTIONS") {
      opened.workerBodies.push(await res.text().catch(() => ""));
    }
  });
  await page.goto(demo.pageUrl(origin, token, email));
  await page.waitForSelector("#save:not([disabled])");
  return opened;
}

interface Outcome {
  state: string;
  http: string | undefined;
  message: string;
  requestId: string;
}

/** Fills the form, saves, and waits for the page to show the outcome. */
async function save(page: Page, fields: Record<string, string>): Promise<Outcome> {
  for (const [name, value] of Object.entries(fields)) await page.fill(`#${name}`, value);
  await page.click("#save");
  await page.waitForFunction(() => {
    const state = document.getElementById("status")?.dataset.state;
    return state !== "idle" && state !== "sending";
  });
  return page.evaluate(() => {
    const status = document.getElementById("status") as HTMLElement;
    return {
      state: status.dataset.state ?? "",
      http: status.dataset.http,
      message: status.textContent ?? "",
      requestId: document.getElementById("request-id")?.textContent ?? "",
    };
  });
}

function expectNoVillageKey(opened: Opened): void {
  for (const body of opened.workerBodies) expect(body).not.toContain(demo.sandbox.defaultNetwork.apiKey);
}

describe("the profile page", () => {
  it("from an allowed origin: the change reaches Village, with the request id shown", async () => {
    const token = await demo.mint(["users:write"], [demo.pages.app.origin]);
    const opened = await openPage(demo.pages.app.origin, token, "grace@example.com");
    expect(opened.page.url()).not.toContain("#");
    const outcome = await save(opened.page, { first_name: "Grace B.", phone_number: "+1 202 555 0199" });
    expect(outcome).toMatchObject({ state: "saved", http: "202" });
    const calls = await received();
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ method: "PATCH", email: "grace@example.com", status: 201 });
    expect(calls[0].headers["x-request-id"]).toBe(outcome.requestId);
    expect(await villageUser("grace@example.com")).toMatchObject({
      first_name: "Grace B.",
      phone_number: "+12025550199",
    });
    expectNoVillageKey(opened);
  });

  it("shows problem+json field errors next to the fields, and nothing is forwarded", async () => {
    const token = await demo.mint(["users:write"], [demo.pages.app.origin]);
    const opened = await openPage(demo.pages.app.origin, token, "grace@example.com");
    const outcome = await save(opened.page, { first_name: "Grace", phone_number: "12345" });
    expect(outcome).toMatchObject({ state: "error", http: "400" });
    expect(outcome.message).toContain("The change is not valid.");
    expect(outcome.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await opened.page.textContent("#phone_number-error")).toContain("international format");
    expect(await opened.page.getAttribute("#phone_number", "aria-invalid")).toBe("true");
    expect(await opened.page.textContent("#first_name-error")).toBe("");
    expect(await received()).toHaveLength(0);
  });

  it("from an origin the Worker does not allow: the browser blocks the call and nothing reaches Village", async () => {
    const before = await villageUser("ada@example.com");
    const jwt = await demo.idp.sign({ sub: "user-ada", email: "ada@example.com" });
    const opened = await openPage(demo.pages.stranger.origin, jwt);
    const outcome = await save(opened.page, { last_name: "Blocked" });
    expect(outcome.state).toBe("network-error");
    expect(outcome.http).toBeUndefined();
    expect(opened.console.some((line) => /CORS policy/.test(line))).toBe(true);
    expect(await received()).toHaveLength(0);
    expect(await villageUser("ada@example.com")).toEqual(before);
  });

  it("an origin-bound token works only from its origin", async () => {
    const token = await demo.mint(["users:write:last_name"], [demo.pages.app.origin]);
    // The partner origin passes CORS, so the Worker's own refusal is what the page shows.
    const partner = await openPage(demo.pages.partner.origin, token, "alan@example.org");
    const refused = await save(partner.page, { last_name: "Partner" });
    expect(refused).toMatchObject({ state: "error", http: "403" });
    expect(refused.message).toContain("This token may not be used from this origin.");
    expect(await received()).toHaveLength(0);

    const app = await openPage(demo.pages.app.origin, token, "alan@example.org");
    expect(await save(app.page, { last_name: "Mathison" })).toMatchObject({ state: "saved", http: "202" });
    const calls = await received();
    expect(calls).toHaveLength(1);
    expect(JSON.parse(calls[0].body)).toEqual({ last_name: "Mathison" });
    expectNoVillageKey(partner);
    expectNoVillageKey(app);
  });

  it("a signed-in user (JWT) updates their own record and is refused for another's", async () => {
    const jwt = await demo.idp.sign({ sub: "user-ada", email: "ada@example.com" }, "ES256");
    const own = await openPage(demo.pages.app.origin, jwt);
    expect(await own.page.getAttribute("#signed-in", "data-email")).toBe("ada@example.com");
    expect(
      await save(own.page, { first_name: "Augusta Ada", phone_number: "+44 20 7946 0000" }),
    ).toMatchObject({
      state: "saved",
      http: "202",
    });
    expect(await villageUser("ada@example.com")).toMatchObject({
      first_name: "Augusta Ada",
      phone_number: "+442079460000",
    });

    const gracesBefore = await villageUser("grace@example.com");
    const other = await openPage(demo.pages.app.origin, jwt, "grace@example.com");
    const refused = await save(other.page, { first_name: "Mallory" });
    expect(refused).toMatchObject({ state: "error", http: "403" });
    expect(refused.message).toContain("You may change only your own record.");
    const calls = await received();
    expect(calls.map((c) => c.email)).toEqual(["ada@example.com"]);
    expect(await villageUser("grace@example.com")).toEqual(gracesBefore);
    expectNoVillageKey(own);
    expectNoVillageKey(other);
  });
});
