import { readFileSync } from "node:fs";
import type { Reporter, TestModule } from "vitest/node";
import { CONTRACT_LINE, type Observation, undocumented } from "./contract.ts";
import { runtimeLeaks } from "./runtime-output.ts";

type UserConsoleLog = Parameters<NonNullable<Reporter["onUserConsoleLog"]>>[0];

/** Anything that looks like one of our tokens. */
const TOKEN = /vge_[0-9a-f]{72}/;

/**
 * Three jobs at the end of a run:
 * - the secret canary: every console line any test produced (the Worker's logs included) and
 *   every line the runtime printed (test/runtime-output.ts) is scanned for the canary Village
 *   key and for anything shaped like a token; a hit fails the run;
 * - the contract check (test/contract.ts): every (operation, status, content type) observed
 *   must be in src/meta/openapi.json; each one missing is named and fails the run;
 * - one plain closing line, `tests: N passed, N failed, N skipped`, for any CI to count.
 */
export default class SummaryReporter implements Reporter {
  private readonly leaks: string[] = [];
  private readonly canary = process.env.VILLAGE_EDGE_CANARY_KEY;
  private readonly observations: Observation[] = [];
  private contractFiles = 0;

  onUserConsoleLog(log: UserConsoleLog): void {
    if (log.content.startsWith(CONTRACT_LINE)) {
      this.observations.push(...(JSON.parse(log.content.slice(CONTRACT_LINE.length)) as Observation[]));
      this.contractFiles++;
    }
    if ((this.canary && log.content.includes(this.canary)) || TOKEN.test(log.content)) {
      this.leaks.push(log.content.slice(0, 300));
    }
  }

  onTestRunEnd(testModules: ReadonlyArray<TestModule>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const module of testModules) {
      let failedHere = 0;
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === "passed") passed++;
        else if (state === "failed") failedHere++;
        else skipped++;
      }
      // A file can fail outside its tests (an import, a hook such as the audit scan): count it.
      failed += module.state() === "failed" && failedHere === 0 ? 1 : failedHere;
    }
    this.leaks.push(...runtimeLeaks());
    const doc = JSON.parse(readFileSync(new URL("../src/meta/openapi.json", import.meta.url), "utf8"));
    const missing = undocumented(doc, this.observations);
    if (missing.length > 0) {
      console.error(
        `\ncontract: ${missing.length} answer(s) the tests observed are not in src/meta/openapi.json (tools/openapi/*, then npm run openapi):`,
      );
      for (const m of missing) console.error(`  ${m}`);
      failed++;
      process.exitCode = 1;
    } else {
      console.log(
        `\ncontract: every answer observed in ${this.contractFiles} file(s) (${this.observations.length} kinds) is documented`,
      );
    }
    if (this.leaks.length > 0) {
      console.error(`\nsecret canary: ${this.leaks.length} log line(s) carried a secret:`);
      for (const leak of this.leaks) console.error(`  ${leak}`);
      failed++;
      process.exitCode = 1;
    } else {
      console.log("\nsecret canary: no log line carried the Village key or a token");
    }
    console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
  }
}
