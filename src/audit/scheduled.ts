/** The Cron Trigger's handler (wrangler.toml `[triggers]`): the hourly audit digests. */
import { configOf } from "../config.ts";
import { logEvent } from "../http/log.ts";
import { runDigests } from "./digest.ts";

/** Digests due hours (src/audit/digest.ts) and logs what it did, or why it failed. */
export async function scheduledDigests(env: Env, scheduledTime: number): Promise<void> {
  try {
    const result = await runDigests(env.AUDIT, configOf(env), scheduledTime);
    logEvent("info", "audit_digest", undefined, result);
  } catch (err) {
    logEvent("error", "audit_digest_failed", undefined, { error: String(err) });
    throw err;
  }
}
