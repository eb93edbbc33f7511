/**
 * `npm run openapi`: writes the published contract, src/meta/openapi.json, from tools/openapi/document.ts (which
 * builds it from the zod schemas that validate requests). The Worker serves that file.
 *
 * `npm run openapi:check`: exits 1 unless src/meta/openapi.json is exactly what tools/openapi/document.ts builds
 * now and is a valid OpenAPI document, by an independent validator
 * (@seriousme/openapi-schema-validator, the official OpenAPI JSON schemas) with every $ref resolved.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { isDeepStrictEqual } from "node:util";
import { Validator } from "@seriousme/openapi-schema-validator";

/**
 * Imported by a computed specifier so that this Node-side project does not type-check the
 * Worker's modules (they need the Workers types; `tsc -p .` checks them).
 */
const SPEC: string = "./openapi/document.ts";
const { buildOpenApi } = (await import(SPEC)) as { buildOpenApi: () => Record<string, unknown> };

const root = resolve(import.meta.dirname, "..");
const file = resolve(root, "src/meta/openapi.json");
const document = buildOpenApi();

if (!process.argv.includes("--check")) {
  writeFileSync(file, `${JSON.stringify(document, null, 2)}\n`);
  execFileSync(resolve(root, "node_modules/.bin/biome"), ["format", "--write", file], { stdio: "ignore" });
  console.log("wrote src/meta/openapi.json");
} else {
  const committed = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  if (!isDeepStrictEqual(committed, document)) {
    console.error("src/meta/openapi.json is stale: run `npm run openapi`");
    process.exit(1);
  }
  const validator = new Validator();
  const result = await validator.validate(committed);
  if (!result.valid) {
    console.error("src/meta/openapi.json is not a valid OpenAPI document:");
    console.error(JSON.stringify(result.errors, null, 2));
    process.exit(1);
  }
  validator.resolveRefs();
  console.log(`src/meta/openapi.json is current and valid OpenAPI ${validator.version}`);
}
