/** Small pieces every Node script here needs: "am I the entry point?" and a pass/fail checklist. */
import { realpathSync } from "node:fs";
import type { Server } from "node:http";
import { pathToFileURL } from "node:url";

/** True when the module with this `import.meta.url` is the script Node was started with. */
export function isMain(moduleUrl: string): boolean {
  try {
    return !!process.argv[1] && moduleUrl === pathToFileURL(realpathSync(process.argv[1])).href;
  } catch {
    return false;
  }
}

/** Throws with `message` unless `ok`: the assertion of checklist steps. */
export function check(ok: unknown, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

/**
 * A checklist for the end-to-end scripts: each step prints `ok` or `FAIL` with the reason, and
 * `summary()` prints the plain closing line `<label>: N passed, M failed` that CI logs count.
 */
export function checklist(label: string) {
  const counts = { passed: 0, failed: 0 };
  return {
    counts,
    async step(name: string, fn: () => Promise<void>): Promise<void> {
      try {
        await fn();
        counts.passed++;
        console.log(`  ok   ${name}`);
      } catch (err) {
        counts.failed++;
        const cause = err instanceof Error && err.cause ? ` (${String(err.cause)})` : "";
        console.log(`  FAIL ${name}\n       ${err instanceof Error ? err.message : String(err)}${cause}`);
      }
    },
    /** Records a failure found outside a step. */
    fail(reason: string): void {
      counts.failed++;
      console.log(`  FAIL ${reason}`);
    },
    summary(): number {
      console.log(`${label}: ${counts.passed} passed, ${counts.failed} failed`);
      return counts.failed === 0 ? 0 : 1;
    },
  };
}

/** The value after `--name` on the command line, if given. */
export function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Stops a local server and ends its open connections (hung ones included), so callers never wait. */
export function closeServer(server: Server): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

const UNITS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/** The one duration syntax of every CLI here, as help texts show it. */
export const DURATION_SYNTAX = "<n>s|m|h|d|w, like 90m, 12h, 30d";

/**
 * A duration in the one syntax every CLI uses: a whole number and a unit, `s`, `m`, `h`, `d` or
 * `w` (`90m`, `12h`, `30d`, `2w`). Returns milliseconds; throws a `RangeError` naming the syntax.
 */
export function parseDuration(text: string): number {
  const match = /^(\d{1,7})([smhdw])$/.exec(text.trim());
  if (!match || Number(match[1]) === 0) {
    throw new RangeError(`"${text}" is not a duration (${DURATION_SYNTAX})`);
  }
  return Number(match[1]) * UNITS[match[2] as keyof typeof UNITS];
}

/** Exit codes of every CLI here: 0 done, 1 failed or not found, 2 usage error. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;
