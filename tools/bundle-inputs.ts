/**
 * `npm run bundle:check`: what ships is exactly src/. Reads the esbuild metafile that
 * `npm run size` wrote (dist/meta.json, from `wrangler deploy --dry-run --metafile`: the one
 * build, not a second one) and fails when a `.ts` file under src/ puts no byte into the
 * deployed bundle (dead code, or a module only tests use: it belongs in test/, tools/ or
 * fakes/), or when anything outside src/ and node_modules/ is bundled (a fake, a tool, a test
 * helper). Files of types only (nothing left once types are erased) are exempt: they cannot
 * be bundled. Run `npm run size` first; a metafile older than a src/ file is refused.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import ts from "typescript";

const root = resolve(import.meta.dirname, "..");
const metafile = resolve(root, "dist/meta.json");

/** Every file under `dir`, as a path relative to the repository root. */
function filesUnder(dir: string): string[] {
  return readdirSync(resolve(root, dir), { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(root, join(e.parentPath, e.name)));
}

/** True when nothing but types is left of a module once TypeScript erases them. */
function typesOnly(path: string): boolean {
  const js = ts.transpileModule(readFileSync(resolve(root, path), "utf8"), {
    compilerOptions: {
      module: ts.ModuleKind.ESNext,
      target: ts.ScriptTarget.ES2022,
      verbatimModuleSyntax: true,
    },
  }).outputText;
  return (
    js
      .replace(/\/\/.*$|\/\*[\s\S]*?\*\//gm, "")
      .replace(/export\s*\{\s*\};?/g, "")
      .trim() === ""
  );
}

interface Meta {
  outputs: Record<string, { inputs: Record<string, { bytesInOutput: number }> }>;
}

let meta: Meta;
try {
  meta = JSON.parse(readFileSync(metafile, "utf8")) as Meta;
} catch {
  console.error("dist/meta.json is missing: run `npm run size` first (it builds the bundle once)");
  process.exit(1);
}
const sources = filesUnder("src");
const built = statSync(metafile).mtimeMs;
const newer = sources.filter((f) => statSync(resolve(root, f)).mtimeMs > built);
if (newer.length > 0) {
  console.error(`dist/meta.json is older than ${newer.join(", ")}: run \`npm run size\` again`);
  process.exit(1);
}

const bundled = new Set<string>();
for (const [path, output] of Object.entries(meta.outputs)) {
  if (path.endsWith(".map")) continue;
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    if (bytesInOutput > 0) bundled.add(input);
  }
}
const outside = [...bundled].filter((f) => !f.startsWith("src/") && !f.startsWith("node_modules/"));
const typeFiles = sources.filter((f) => f.endsWith(".ts") && typesOnly(f));
const missing = sources.filter((f) => f.endsWith(".ts") && !bundled.has(f) && !typeFiles.includes(f));

for (const f of missing) console.error(`not in the bundle: ${f} (nothing imports it from src/index.ts)`);
for (const f of outside) console.error(`bundled from outside src/: ${f}`);
console.log(
  `bundle inputs: ${bundled.size - [...bundled].filter((f) => f.startsWith("node_modules/")).length} from src/, ` +
    `${missing.length} src/ module(s) missing, ${outside.length} from outside src/ and node_modules/; ` +
    `types only, exempt: ${typeFiles.join(", ") || "none"}`,
);
if (missing.length > 0 || outside.length > 0) process.exitCode = 1;
