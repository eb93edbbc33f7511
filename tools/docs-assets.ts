/**
 * Copies the API reference renderer (npm `rapidoc`, MIT) into public/docs/ (and the generated
 * contract into public/openapi.json, which GET /openapi.json reads through the ASSETS binding), which Workers static
 * assets serve at /docs/ beside the Worker (wrangler.toml `[assets]`; the Worker's `GET /docs`
 * page loads it). It is 0.9 MB, kept out of git and out of the Worker bundle. wrangler.toml's
 * `[build]` runs this before every `wrangler dev` and `wrangler deploy`.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const root = resolve(import.meta.dirname, "..");
const target = join(root, "public", "docs");
const dist = join(dirname(createRequire(import.meta.url).resolve("rapidoc/package.json")), "dist");
const FILES = ["rapidoc-min.js", "rapidoc-min.js.LICENSE.txt"];

/** The contract as GET /openapi.json serves it: src/meta/openapi.json (generated), compact. */
const CONTRACT = join(root, "src", "meta", "openapi.json");

/** Copies the renderer's files into public/docs/ and the contract to public/openapi.json (idempotent). */
export function copyDocsAssets(): void {
  mkdirSync(target, { recursive: true });
  for (const file of FILES) copyFileSync(join(dist, file), join(target, file));
  writeFileSync(
    join(root, "public", "openapi.json"),
    JSON.stringify(JSON.parse(readFileSync(CONTRACT, "utf8"))),
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) copyDocsAssets();
