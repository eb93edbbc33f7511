/**
 * The "nothing lost" checks of `npm run load`. Each takes the plan, what each request got and
 * what the sandbox or the audit trail shows, and returns the problems found (empty: passed).
 * Requests are matched by their `X-Request-Id`, which the proxy forwards and audits.
 */
import type { Sent } from "./load-client.ts";
import type { Planned } from "./load-plan.ts";

/** One request the sandbox recorded (fakes/sandbox.ts `ReceivedRequest`, the parts used here). */
export interface Received {
  email: string;
  body: string;
  status: number | string;
  headers: Record<string, string>;
}

/** One entry as `GET /audit` lists it (src/audit/store.ts `AuditSummary`, the parts used here). */
export interface AuditSummary {
  id: string;
  request_id: string;
  email?: string;
  fields: string[];
  outcome: string;
  reason?: string;
  /** Token lifecycle entries (`token.create`, ...): the load's own tokens, minted through npm start's token API. */
  event?: string;
}

/** The problem type slug of a problem+json answer. */
export function problemType(s: Sent): string | undefined {
  try {
    const type = (JSON.parse(s.body) as { type?: unknown }).type;
    return typeof type === "string" ? type.replace(/^urn:village-edge:problem:/, "") : undefined;
  } catch {
    return undefined;
  }
}

const describe = (p: Planned, s: Sent) =>
  `${p.id} [${p.cls}] expected ${p.status}${p.problem ? ` ${p.problem}` : ""}, got ` +
  `${s.error ? `error "${s.error}"` : `${s.status} ${problemType(s) ?? ""}`.trim()}`;

/** Requests that ended in a connection error or a timeout. */
export const unanswered = (plan: Planned[], got: Sent[]) =>
  plan.flatMap((p, i) => (got[i].error ? [describe(p, got[i])] : []));

/** Requests answered with a 5xx. */
export const serverErrors = (plan: Planned[], got: Sent[]) =>
  plan.flatMap((p, i) => (got[i].status >= 500 ? [describe(p, got[i])] : []));

/** Requests (floods apart) whose status, problem type or echoed request id is not as planned. */
export const unplannedAnswers = (plan: Planned[], got: Sent[]) =>
  plan.flatMap((p, i) => {
    const s = got[i];
    if (p.flood || s.error) return [];
    const bad =
      s.status !== p.status ||
      s.requestId !== p.id ||
      (p.problem !== undefined &&
        (problemType(s) !== p.problem || !s.contentType?.startsWith("application/problem+json")));
    return bad ? [describe(p, s)] : [];
  });

/**
 * The phone limiter's windows are aligned to the wall clock: within one window exactly `limit`
 * of a flood's changes pass; a flood that straddles a window boundary may pass up to `limit`
 * per window. Checks that, then sets each flood request's expected status and audit from
 * what it got, for the checks that follow. `straddled`: floods that spanned two windows.
 */
export function settleFloods(plan: Planned[], got: Sent[], phone: { limit: number; periodMs: number }) {
  const problems: string[] = [];
  let straddled = 0;
  const groups = new Map<string, number[]>();
  plan.forEach((p, i) => {
    if (p.flood) groups.set(p.flood, [...(groups.get(p.flood) ?? []), i]);
  });
  const windowOf = (t: number) => Math.floor(t / phone.periodMs);
  for (const [email, idx] of groups) {
    const windows =
      windowOf(Math.max(...idx.map((i) => got[i].endedAt))) -
      windowOf(Math.min(...idx.map((i) => got[i].startedAt))) +
      1;
    const accepted = idx.filter((i) => got[i].status === 202).length;
    const limited = idx.filter((i) => got[i].status === 429 && problemType(got[i]) === "rate-limited").length;
    const most = phone.limit * windows;
    if (windows > 1) straddled++;
    if (accepted + limited !== idx.length || accepted < Math.min(idx.length, phone.limit)) {
      problems.push(`${email}: ${idx.map((i) => got[i].status).join(",")} (limit ${phone.limit})`);
    } else if (accepted > most) {
      problems.push(`${email}: ${accepted} accepted in ${windows} window(s), at most ${most} allowed`);
    }
    for (const i of idx) {
      const refused = got[i].status === 429;
      plan[i].status = refused ? 429 : 202;
      plan[i].audit = refused ? null : "accepted";
      plan[i].problem = refused ? "rate-limited" : undefined;
    }
  }
  return { problems, floods: groups.size, straddled };
}

/** Forwarded to Village, as planned: accepted, or answered "no such user" by Village. */
export const forwarded = (p: Planned, s: Sent) =>
  (p.audit === "accepted" || p.audit === "not_found") && s.status === p.status;

const sameChange = (a: string, b: string) => {
  const x = JSON.parse(a) as Record<string, string>;
  const y = JSON.parse(b) as Record<string, string>;
  return Object.keys(x).length === Object.keys(y).length && Object.keys(x).every((k) => x[k] === y[k]);
};

const groupBy = <T>(items: T[], key: (t: T) => string) => {
  const out = new Map<string, T[]>();
  for (const t of items) out.set(key(t), [...(out.get(key(t)) ?? []), t]);
  return out;
};

/**
 * The sandbox must have received each forwarded request exactly once, for its email, with its
 * body, answered 201 (202 at the proxy) or 404; and nothing else: no refused request, no
 * request of unknown id.
 */
export function receivedProblems(plan: Planned[], got: Sent[], received: Received[]): string[] {
  const byId = groupBy(received, (r) => r.headers["x-request-id"] ?? "(none)");
  const problems: string[] = [];
  const ids = new Set(plan.map((p) => p.id));
  for (const id of byId.keys()) {
    if (!ids.has(id)) problems.push(`the sandbox received an unplanned request ${id}`);
  }
  plan.forEach((p, i) => {
    const recs = byId.get(p.id) ?? [];
    if (!forwarded(p, got[i])) {
      if (recs.length > 0) problems.push(`${p.id} [${p.cls}] answered ${got[i].status} but reached Village`);
      return;
    }
    const want = p.status === 202 ? 201 : 404;
    if (recs.length !== 1) problems.push(`${p.id} [${p.cls}] reached Village ${recs.length} times`);
    else if (recs[0].email !== p.email || recs[0].status !== want || !sameChange(recs[0].body, p.body)) {
      problems.push(`${p.id} [${p.cls}] reached Village as ${JSON.stringify(recs[0]).slice(0, 300)}`);
    }
  });
  return problems;
}

/**
 * The audit trail, as listed by the review API, against the plan. `intents`: each forwarded
 * request has exactly one entry, its outcome recorded (accepted/not_found, never pending), with
 * its email and field names. `refusals`: each refusal of a valid token has exactly one entry
 * with outcome invalid/denied and its planned refusal reason; 401s and 429s have none; no entry
 * belongs to anything but a planned request. Requests whose answer was not as planned are
 * already reported and skipped here: what they should have left is unknown.
 */
export function auditProblems(plan: Planned[], got: Sent[], all: AuditSummary[]) {
  // The load mints its tokens through the token CLI, which goes through npm start's token API:
  // each is a `token.create` lifecycle entry, accepted, not a request of the plan.
  const lifecycle = all.filter((e) => e.event !== undefined);
  const odd = lifecycle.filter((e) => e.event !== "token.create" || e.outcome !== "accepted");
  const entries = all.filter((e) => e.event === undefined);
  const byRequest = groupBy(entries, (e) => e.request_id);
  const ids = new Set(plan.map((p) => p.id));
  const intents: string[] = [];
  const refusals = entries
    .filter((e) => !ids.has(e.request_id))
    .map((e) => `unplanned audit entry ${e.id} (${e.request_id}, ${e.outcome})`)
    .concat(odd.map((e) => `unplanned lifecycle entry ${e.id} (${e.event}, ${e.outcome})`));
  plan.forEach((p, i) => {
    if (got[i].status !== p.status) return;
    const found = byRequest.get(p.id) ?? [];
    const isIntent = p.audit === "accepted" || p.audit === "not_found";
    const list = isIntent ? intents : refusals;
    if (p.audit === null) {
      if (found.length > 0) list.push(`${p.id} [${p.cls}] ${p.status} has ${found.length} audit entries`);
      return;
    }
    if (found.length !== 1) {
      list.push(`${p.id} [${p.cls}] has ${found.length} audit entries, expected exactly 1`);
      return;
    }
    const e = found[0];
    const fields = isIntent ? Object.keys(JSON.parse(p.body)).sort().join() : e.fields.join();
    if (
      e.outcome !== p.audit ||
      e.email !== p.email ||
      e.fields.join() !== fields ||
      (!isIntent && e.reason !== p.reason)
    ) {
      list.push(`${p.id} [${p.cls}] audit shows ${JSON.stringify(e)}`);
    }
  });
  return { intents, refusals };
}
