/**
 * `npm run openapi:lint`: Redocly's linter (@redocly/cli, rules in redocly.yaml) on
 * src/meta/openapi.json; exits 1 on any error or warning, printing them. Offline: telemetry
 * and the update notice are off.
 */
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const bin = resolve(root, "node_modules/.bin/redocly");
const env = { ...process.env, REDOCLY_TELEMETRY: "off", REDOCLY_SUPPRESS_UPDATE_NOTICE: "true" };
const args = ["lint", "--config", resolve(root, "redocly.yaml"), "src/meta/openapi.json"];

const json = spawnSync(bin, [...args, "--format=json"], { cwd: root, env, encoding: "utf8" });
let totals: { errors: number; warnings: number } | undefined;
try {
  totals = (JSON.parse(json.stdout) as { totals: { errors: number; warnings: number } }).totals;
} catch {
  process.stderr.write(`redocly lint did not run (exit ${json.status}):\n${json.stderr}${json.stdout}`);
  process.exit(1);
}
if (totals.errors + totals.warnings > 0) {
  spawnSync(bin, [...args, "--format=stylish"], { cwd: root, env, stdio: "inherit" });
  console.error(`redocly lint: ${totals.errors} error(s), ${totals.warnings} warning(s); none are allowed`);
  process.exit(1);
}
console.log("redocly lint: src/meta/openapi.json has no errors and no warnings");
