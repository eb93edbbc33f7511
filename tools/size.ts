/**
 * `npm run size`: the Worker's size as it deploys, against its budget.
 *
 * Builds with `wrangler deploy --dry-run` (wrangler.toml sets `minify = true`, so this is the
 * bundle `npm run deploy` uploads) into dist/, gzips the uploaded modules as wrangler does,
 * lists what is biggest in the bundle (from esbuild's metafile), and prints as its last line
 * `gzip KiB: <n>`. Exits 1 over BUDGET_GZIP_KIB: every cold start pays for the bundle.
 */
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";

/** The budget from issue 5, in KiB of gzip. A Hono hello-world is about 9. */
export const BUDGET_GZIP_KIB = 48;

const root = resolve(import.meta.dirname, "..");
const outdir = resolve(root, "dist");
const metafile = resolve(outdir, "meta.json");

rmSync(outdir, { recursive: true, force: true });
execFileSync(
  resolve(root, "node_modules/.bin/wrangler"),
  ["deploy", "--dry-run", "--outdir", outdir, "--metafile", metafile],
  {
    cwd: root,
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
  },
);

// What wrangler uploads: the modules, not the source map, its README or our metafile.
const modules = readdirSync(outdir).filter((f) => /\.(m?js|wasm)$/.test(f));
const content = Buffer.concat(modules.map((f) => readFileSync(join(outdir, f))));
const gzipKib = gzipSync(content).byteLength / 1024;

interface Meta {
  outputs: Record<string, { bytes: number; inputs: Record<string, { bytesInOutput: number }> }>;
}
const meta = JSON.parse(readFileSync(metafile, "utf8")) as Meta;
const bySource = new Map<string, number>();
for (const [path, output] of Object.entries(meta.outputs)) {
  if (path.endsWith(".map")) continue;
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)?.[1] ?? input.replace(/^.*?(src\/)/, "$1");
    bySource.set(pkg, (bySource.get(pkg) ?? 0) + bytesInOutput);
  }
}
console.log("biggest parts of the minified bundle (KiB before gzip):");
for (const [source, bytes] of [...bySource].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
  console.log(`  ${(bytes / 1024).toFixed(1).padStart(6)}  ${source}`);
}
console.log(`minified KiB: ${(content.byteLength / 1024).toFixed(2)} (budget: ${BUDGET_GZIP_KIB} KiB gzip)`);
console.log(`gzip KiB: ${gzipKib.toFixed(2)}`);
if (gzipKib > BUDGET_GZIP_KIB) process.exitCode = 1;
