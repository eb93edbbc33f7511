/**
 * `GET /docs`: the partner API reference, a page that renders `/openapi.json` in the browser with
 * RapiDoc (npm `rapidoc`, MIT), served from this Worker's static assets at `/docs/rapidoc-min.js`
 * (copied there by tools/docs-assets.ts; not in the Worker bundle). Nothing loads from elsewhere:
 * the Content-Security-Policy allows this origin only. Styles may be inline because the renderer
 * builds them at run time; scripts may not.
 */
import { Hono } from "hono";
import type { AppEnv } from "../http/context.ts";
import { respond } from "../http/respond.ts";

/** Where the renderer is served (public/docs/, Workers static assets). */
export const RENDERER_PATH = "/docs/rapidoc-min.js";

/** The page's policy: same origin only, no inline script, no framing, no forms. */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>village-edge API reference</title>
<link rel="icon" href="data:,">
<script type="module" src="${RENDERER_PATH}"></script>
</head>
<body>
<rapi-doc spec-url="/openapi.json" render-style="read" theme="light" show-header="false" load-fonts="false"
  allow-try="false" allow-server-selection="false" allow-authentication="false"
  allow-spec-url-load="false" allow-spec-file-load="false" schema-style="table"
  schema-description-expanded="true" default-schema-tab="schema" regular-font="system-ui, sans-serif"
  mono-font="ui-monospace, monospace"></rapi-doc>
<noscript>The API reference needs JavaScript. The contract itself is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body>
</html>
`;

export const docs = new Hono<AppEnv>();

docs.get("/", (c) =>
  respond(c, PAGE, 200, {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": DOCS_CSP,
    "Referrer-Policy": "no-referrer",
  }),
);
