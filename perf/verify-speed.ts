/**
 * `npm run bench:verify [-- --entries N]`: how fast `npm run audit -- verify` checks a local trail.
 * Writes N entries (default 10,000; one in five an intent with its outcome, the rest refusals)
 * into one past hour of a fresh local state folder through src/audit/store.ts, digests it with
 * src/audit/digest.ts, then runs the verify CLI on that folder and prints its entries per second.
 * Nothing else is touched; the folder is removed afterwards.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ensureLocalKey } from "../scripts/lib/audit-key.ts";
import { argValue } from "../scripts/lib/cli.ts";
import { openLocalKv, PROJECT_ROOT } from "../scripts/lib/kv.ts";
import { digestKeys, GENESIS, HOUR_MS, hourOf, newProgress, runDigests } from "../src/audit/digest.ts";
import { type AuditEntry, newAuditId, writeEntry, writeOutcome } from "../src/audit/store.ts";
import { parseSigningKey } from "../src/model/mac.ts";

const COUNT = Number(argValue("entries") ?? 10_000);
if (!Number.isInteger(COUNT) || COUNT < 1) {
  console.error("bench:verify: --entries must be a positive whole number");
  process.exit(2);
}
const state = mkdtempSync(path.join(tmpdir(), "village-edge-verify-"));
try {
  const cfg = { auditRetentionDays: 400, auditSigningKey: parseSigningKey(ensureLocalKey(state)) };
  const hour = hourOf(Date.now()) - 3 * HOUR_MS;
  const { kv: raw, dispose } = await openLocalKv("AUDIT", state);
  const kv = raw as unknown as KVNamespace;
  const started = performance.now();
  const work: Promise<void>[] = [];
  for (let i = 0; i < COUNT; i++) {
    const time = hour + Math.floor((i * HOUR_MS) / COUNT);
    const entry: AuditEntry = {
      v: 1,
      id: newAuditId(time),
      request_id: `speed-${i}`,
      time: new Date(time).toISOString(),
      token_id: "tok_0000000000005eed",
      token_name: "speed",
      email: `speed${i % 100}@example.com`,
      fields: ["first_name"],
      values_mode: "masked",
      values: { first_name: "A**" },
      ...(i % 5 !== 0 ? { outcome: "denied" as const, reason: "scope" } : {}),
    };
    work.push(
      writeEntry(kv, entry, cfg).then(() =>
        i % 5 === 0
          ? writeOutcome(
              kv,
              { v: 1, id: entry.id, time: entry.time, outcome: "accepted", latency_ms: 3 },
              cfg,
            )
          : undefined,
      ),
    );
    if (work.length >= 100) await Promise.all(work.splice(0));
  }
  await Promise.all(work);
  await kv.put(digestKeys.progress, JSON.stringify(newProgress(hour, GENESIS)));
  while ((await runDigests(kv, cfg, hour + 2 * HOUR_MS)).pending) {}
  await dispose();
  console.log(
    `bench:verify: wrote and digested ${COUNT} entries in ${((performance.now() - started) / 1000).toFixed(1)} s`,
  );
  const args = ["scripts/audit.ts", "verify", "--persist-to", state, "--json"];
  args.push("--since", new Date(hour).toISOString(), "--until", new Date(hour + HOUR_MS - 1).toISOString());
  const r = spawnSync(process.execPath, args, { cwd: PROJECT_ROOT, encoding: "utf8" });
  if (r.status !== 0) {
    console.error(`bench:verify: verify exited ${r.status}\n${r.stdout}${r.stderr}`);
    process.exitCode = 1;
  } else {
    const report = JSON.parse(r.stdout) as {
      entries: number;
      outcomes: number;
      indexes: number;
      seconds: number;
    };
    console.log(
      `bench:verify: verify checked ${report.entries} entries, ${report.outcomes} outcomes, ${report.indexes} index keys ` +
        `in ${report.seconds.toFixed(2)} s: ${Math.round(report.entries / report.seconds)} entries/s`,
    );
  }
} finally {
  rmSync(state, { recursive: true, force: true });
}
