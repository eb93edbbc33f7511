/**
 * Copies the API reference renderer (npm `rapidoc`, MIT) into public/docs/, which Workers static
 * assets serve at /docs/ beside the Worker (wrangler.toml `[assets]`; the Worker's `GET /docs`
 * page loads it). It is 0.9 MB, kept out of git and out of the Worker bundle. wrangler.toml's
 * `[build]` runs this before every `wrangler dev` and `wrangler deploy`; `--check` exits 1 when
 * the copy is missing or differs from the installed package.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const target = join(root, "public", "docs");
const dist = join(dirname(createRequire(import.meta.url).resolve("rapidoc/package.json")), "dist");
const FILES = ["rapidoc-min.js", "rapidoc-min.js.LICENSE.txt"];

/** Copies the renderer's files into public/docs/ (idempotent). */
export function copyDocsAssets(): void {
  mkdirSync(target, { recursive: true });
  for (const file of FILES) copyFileSync(join(dist, file), join(target, file));
}

/** True when public/docs/ holds exactly the installed renderer. */
export function docsAssetsCurrent(): boolean {
  return FILES.every((f) => {
    const copy = join(target, f);
    return existsSync(copy) && readFileSync(copy).equals(readFileSync(join(dist, f)));
  });
}

if (import.meta.main) {
  if (process.argv.includes("--check")) {
    if (!docsAssetsCurrent()) {
      console.error("public/docs/ is missing the API reference renderer: run `node tools/docs-assets.ts`");
      process.exit(1);
    }
  } else {
    copyDocsAssets();
  }
}
