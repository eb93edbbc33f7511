/**
 * The review API (scope `audit:read`): `GET /audit` lists and filters the trail newest first,
 * as JSON pages or as an NDJSON export; `GET /audit/:id` shows one entry with its outcome;
 * `GET /audit/records` hands out raw signed records for `npm run audit -- verify`.
 * Reviews are not themselves audited (they change nothing); they are in the request logs.
 */
import { Hono } from "hono";
import { createMiddleware } from "hono/factory";
import { bearerAuth, type Principal, requireScope } from "../auth/authenticate.ts";
import { limitReview } from "../auth/rate-limit.ts";
import type { AppEnv } from "../http/context.ts";
import { ProblemError } from "../http/errors.ts";
import { respond, respondJson } from "../http/respond.ts";
import { type AuditQuery, mayReview, queryAudit } from "./query.ts";
import { NDJSON, parseAuditQuery } from "./query-schema.ts";
import { readRecords } from "./records.ts";
import { readEntry } from "./store.ts";

/** Entries per JSON page unless `limit` says otherwise (at most 1000, KV's page size). */
const DEFAULT_LIMIT = 50;
/** `list()` calls one JSON page may make before it answers with what it found. */
const PAGE_MAX_LIST_CALLS = 5;
/**
 * One NDJSON export invocation: at most this many entries and `list()` calls (plus one bulk
 * read per 100 open intents), far below the 1000 KV operations a Worker invocation may make
 * and small enough for the CPU limit. The next cursor is in `X-Next-Cursor`.
 */
const EXPORT_MAX_ENTRIES = 5000;
const EXPORT_MAX_LIST_CALLS = 5;
const unavailable = (err: unknown) =>
  new ProblemError("service-unavailable", "The audit trail is unavailable; try again later.", {
    headers: { "Retry-After": "5" },
    logDetail: `audit read failed: ${String(err)}`,
  });

/** The email domains a reviewer is limited to (undefined: any); `requireScope` made it a token. */
const domainsOf = (p: Principal): readonly string[] | undefined => (p.kind === "token" ? p.domains : []);

const noSuchEntry = () =>
  new ProblemError(
    "not-found",
    "No audit entry has this id. To find entries by request id, use GET /audit?request_id=...",
  );

/** Every review: a valid token from its origin, with `audit:read`, within its review limit. */
const reviewer = [
  bearerAuth(),
  requireScope("audit:read"),
  createMiddleware<AppEnv>(async function reviewLimit(c, next) {
    await limitReview(c);
    await next();
  }),
] as const;

export const audit = new Hono<AppEnv>();

audit.get("/", ...reviewer, async function listAudit(c) {
  const params = parseAuditQuery(c.req.queries());
  const q: AuditQuery = {
    email: params.email,
    token: params.token,
    outcome: params.outcome,
    requestId: params.request_id,
    since: params.since,
    until: params.until,
    cursor: params.cursor,
    domains: domainsOf(c.get("principal")),
  };
  const ndjson = (c.req.header("Accept") ?? "").toLowerCase().includes(NDJSON);
  const limits = ndjson
    ? { maxEntries: params.limit ?? EXPORT_MAX_ENTRIES, maxListCalls: EXPORT_MAX_LIST_CALLS }
    : { maxEntries: params.limit ?? DEFAULT_LIMIT, maxListCalls: PAGE_MAX_LIST_CALLS };
  let page: Awaited<ReturnType<typeof queryAudit>>;
  try {
    page = await queryAudit(c.env.AUDIT, q, limits);
  } catch (err) {
    throw unavailable(err);
  }
  const headers: Record<string, string> = { Vary: "Accept" };
  if (page.cursor !== null) headers["X-Next-Cursor"] = page.cursor;
  return ndjson
    ? respond(c, page.entries.map((e) => `${JSON.stringify(e)}\n`).join(""), 200, {
        ...headers,
        "Content-Type": NDJSON,
      })
    : respondJson(c, page, 200, headers);
});

audit.get("/records", ...reviewer, async function auditRecords(c) {
  // Raw records cross every domain: a domain-limited reviewer may not read them.
  if (domainsOf(c.get("principal")) !== undefined) {
    throw new ProblemError("forbidden", "Raw audit records need an audit:read token without domains.");
  }
  const unknown = Object.keys(c.req.queries()).filter((name) => !["prefix", "cursor", "key"].includes(name));
  const repeated = ["prefix", "cursor"].filter((name) => (c.req.queries(name)?.length ?? 0) > 1);
  if (unknown.length > 0 || repeated.length > 0) {
    throw new ProblemError("invalid-request", "The records query is not valid.", {
      errors: [...unknown, ...repeated].map((field) => ({
        field,
        pointer: "",
        detail: unknown.includes(field)
          ? "Unknown query parameter; the parameters are prefix, cursor, key."
          : "Give this parameter once.",
      })),
    });
  }
  const q = {
    prefix: c.req.query("prefix"),
    cursor: c.req.query("cursor"),
    keys: c.req.queries("key") ?? [],
  };
  let page: Awaited<ReturnType<typeof readRecords>>;
  try {
    page = await readRecords(c.env.AUDIT, q);
  } catch (err) {
    throw err instanceof ProblemError ? err : unavailable(err);
  }
  return respondJson(c, page);
});

audit.get("/:id", ...reviewer, async function showAudit(c) {
  let entry: Awaited<ReturnType<typeof readEntry>>;
  try {
    entry = await readEntry(c.env.AUDIT, c.req.param("id"));
  } catch (err) {
    throw unavailable(err);
  }
  // An entry outside a domain-limited reviewer's domains does not exist for it.
  if (!entry || !mayReview(domainsOf(c.get("principal")), entry.email)) throw noSuchEntry();
  return respondJson(c, entry);
});
