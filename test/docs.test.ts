/**
 * `GET /docs`: the partner API reference page. The Worker serves the page (its headers and
 * policy are checked here); the renderer it loads is a static asset, checked in a real browser
 * by test/browser/docs-page.spec.ts.
 */
import { describe, expect, it } from "vitest";
import { DOCS_CSP, RENDERER_PATH } from "../src/meta/docs.ts";
import { expectProblem, send } from "./helpers.ts";

describe("GET /docs", () => {
  it("serves the page with the standard headers and a strict Content-Security-Policy", async () => {
    const res = await send("/docs");
    expect(res.status).toBe(200);
    expect(res.headers.get("Content-Type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("Cache-Control")).toBe("no-store");
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    expect(res.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);
    const csp = res.headers.get("Content-Security-Policy") ?? "";
    expect(csp).toBe(DOCS_CSP);
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    expect(csp).toContain("frame-ancestors 'none'");
  });

  it("loads only its own renderer and contract, from this origin", async () => {
    const html = await (await send("/docs")).text();
    expect(html).toContain(`<script type="module" src="${RENDERER_PATH}"></script>`);
    expect(html).toContain('spec-url="/openapi.json"');
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//);
    expect(html).not.toMatch(/<script>(?!<\/script>)/); // no inline script for the policy to allow
    expect(html).toContain('allow-try="false"');
  });

  it("keeps the API's answers for other paths and methods: 404 and 405 problem+json", async () => {
    await expectProblem(await send("/docs/"), 404, "not-found");
    await expectProblem(await send("/docs/elsewhere"), 404, "not-found");
    const post = await send("/docs", { method: "POST" });
    await expectProblem(post, 405, "method-not-allowed");
    expect(post.headers.get("Allow")).toBe("GET, HEAD");
  });
});
