/**
 * Copies the API reference renderer (npm `rapidoc`, MIT) into public/docs/, which Workers static
 * assets serve at /docs/ beside the Worker (wrangler.toml `[assets]`; the Worker's `GET /docs`
 * page loads it). It is 0.9 MB, kept out of git and out of the Worker bundle. wrangler.toml's
 * `[build]` runs this before every `wrangler dev` and `wrangler deploy`.
 */
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const root = resolve(import.meta.dirname, "..");
const target = join(root, "public", "docs");
const dist = join(dirname(createRequire(import.meta.url).resolve("rapidoc/package.json")), "dist");
const FILES = ["rapidoc-min.js", "rapidoc-min.js.LICENSE.txt"];

/** Copies the renderer's files into public/docs/ (idempotent). */
export function copyDocsAssets(): void {
  mkdirSync(target, { recursive: true });
  for (const file of FILES) copyFileSync(join(dist, file), join(target, file));
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) copyDocsAssets();
