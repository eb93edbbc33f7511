/**
 * Token management over HTTP (`/tokens`, scope `tokens:admin`): create, list, show, revoke and
 * rotate, for a partner-onboarding system or the token CLI (which finds `npm start`).
 * A concern of its own, beside src/auth/ (which answers "who is calling?"): this changes the
 * tokens, and each change is a lifecycle entry in the audit trail, written before it is made.
 *
 * No escalation: no request here makes, rotates or revokes a token holding `tokens:admin` (only
 * the CLI's direct KV path mints one). Admin tokens are for servers (an `Origin` is refused, as
 * for every token without origins), expire within 30 days, and go through the per-caller
 * limiter before anything else; a refusal after it is audited. `TOKEN_ADMIN` switches it all off.
 */
import { type Context, Hono } from "hono";
import type * as z from "zod/mini";
import { refusalOutcome, requestFacts } from "../audit/record.ts";
import { type TokenEvent, type TokenEventEntry, type TokenEventTarget, withRetry } from "../audit/store.ts";
import { assertOrigin, authenticate, type TokenPrincipal } from "../auth/authenticate.ts";
import { limitCaller, refusalBudget } from "../auth/rate-limit.ts";
import { insufficientScope } from "../auth/refusals.ts";
import {
  ADMIN_SCOPE,
  buildRecord,
  createToken,
  DEFAULT_OVERLAP_S,
  getTokenById,
  type ListedToken,
  listTokenPage,
  overlapEnd,
  publicView,
  revokeToken,
  rotateToken,
  statusOf,
  type TokenIndexRecord,
  type TokenRecord,
} from "../auth/tokens.ts";
import { configOf, tokenAdminOf } from "../config.ts";
import { readJsonBody } from "../http/body.ts";
import type { AppEnv } from "../http/context.ts";
import { type FieldError, ProblemError } from "../http/errors.ts";
import { logEvent } from "../http/log.ts";
import type { RefusalReason } from "../http/reasons.ts";
import { respondJson } from "../http/respond.ts";
import { lifecycleEntry, targetOf, writeLifecycle } from "./lifecycle.ts";
import { fieldErrors, MAX_TOKEN_BODY_BYTES, tokenSchemas } from "./schemas.ts";

type Ctx = Context<AppEnv>;

declare module "hono" {
  interface ContextVariableMap {
    /** The token a token management request acts on, once known (for its audit entry). */
    tokenTarget?: TokenEventTarget;
  }
}

const ID = /^tok_[0-9a-f]{16}$/;
/** Tokens per page unless `limit` says otherwise; `list()` calls one page may make. */
const DEFAULT_LIMIT = 100;
const PAGE_MAX_LIST_CALLS = 5;

/** What revocation and rotation answers say about propagation. */
export const PROPAGATION_NOTE =
  "KV is eventually consistent: an old secret may work up to about a minute longer elsewhere.";

const noSuchToken = () => new ProblemError("not-found", "No token has this id.");
const invalid = (errors: FieldError[]) =>
  new ProblemError("validation-failed", "The request body is not valid.", { errors });
/** Runs a TOKENS operation; a failure is a 503. */
async function store<T>(op: Promise<T>): Promise<T> {
  try {
    return await op;
  } catch (err) {
    throw new ProblemError("service-unavailable", "The token store is unavailable; try again later.", {
      headers: { "Retry-After": "5" },
      logDetail: `token store: ${String(err)}`,
    });
  }
}

/** A lifecycle entry of this request, by its (token) principal. */
function entryOf(
  c: Ctx,
  event: TokenEvent,
  outcome: TokenEventEntry["outcome"],
  reason?: RefusalReason,
  overBudget?: true,
) {
  const p = c.get("principal") as TokenPrincipal;
  return lifecycleEntry({
    actor: { id: p.tokenId, name: p.tokenName },
    event,
    target: c.get("tokenTarget"),
    outcome,
    reason,
    overBudget,
    request: requestFacts(c),
    secrets: [c.get("config").villageApiKey],
  });
}

/**
 * Records a refused change request of a valid token, after the response. The caller limiter
 * comes first: if the refusal came before it (an admin token used from a browser), it runs
 * now, and a caller over its limit is not recorded (a flood must not cost a write each).
 */
async function recordRefusal(c: Ctx, event: TokenEvent, err: unknown, limited: boolean): Promise<void> {
  if (c.get("principal")?.kind !== "token" || !(err instanceof ProblemError)) return;
  const outcome = refusalOutcome(err);
  if (
    !outcome ||
    (!limited &&
      !(await limitCaller(c).then(
        () => true,
        () => false,
      )))
  )
    return;
  const reason = err.reason;
  let entry: TokenEventEntry | undefined;
  // Within the caller's refusal budget (auth/rate-limit.ts), as for PATCH /users refusals.
  const write = async () => {
    const budget = await refusalBudget(c);
    if (budget === "none") {
      logEvent("warn", "audit_refusal_suppressed", c, { event, outcome, reason });
      return;
    }
    const written = entryOf(c, event, outcome, reason, budget === "summary" ? true : undefined);
    entry = written;
    await withRetry(() => writeLifecycle(c.env.AUDIT, written, c.get("config")));
  };
  c.executionCtx.waitUntil(
    write().catch((error) =>
      logEvent("error", "audit_refusal_lost", c, {
        audit_id: entry?.id,
        event,
        reason,
        error: String(error),
      }),
    ),
  );
}

/** Writes the lifecycle entry of an action about to be done, and waits for it: no entry, no action. */
async function recordAction(c: Ctx, event: TokenEvent, target: TokenEventTarget): Promise<void> {
  c.set("tokenTarget", target);
  const entry = entryOf(c, event, "accepted");
  try {
    await writeLifecycle(c.env.AUDIT, entry, c.get("config"));
  } catch (err) {
    throw new ProblemError(
      "service-unavailable",
      "The action could not be recorded in the audit trail, so it was not done; try again later.",
      { headers: { "Retry-After": "5" }, logDetail: `token lifecycle entry not written: ${String(err)}` },
    );
  }
  c.set("auditId", entry.id);
}

/** Reads and validates a JSON body (415, 413, 400 as for user changes); none at all is `{}` when allowed. */
async function readBody<S extends z.ZodMiniType>(c: Ctx, schema: S, optional = false): Promise<z.output<S>> {
  const options = {
    detail: "The request body is not valid.",
    maxBytes: MAX_TOKEN_BODY_BYTES,
    fieldErrors: (issues: readonly z.core.$ZodIssue[]) => fieldErrors(issues, "body"),
  };
  if (!optional || c.req.raw.body !== null) return readJsonBody(c, schema, options);
  const result = schema.safeParse({});
  if (!result.success) throw invalid(options.fieldErrors(result.error.issues));
  return result.data;
}

/** The id record of `:id`, or 404. */
async function tokenOf(c: Ctx): Promise<TokenIndexRecord> {
  const id = c.req.param("id") ?? "";
  const index = ID.test(id) ? await store(getTokenById(c.env.TOKENS, id)) : null;
  if (!index) throw noSuchToken();
  return index;
}

/** {@link tokenOf} for a change: a token holding `tokens:admin` is refused (and named in the trail). */
async function managedToken(c: Ctx): Promise<TokenIndexRecord> {
  const index = await tokenOf(c);
  const secrets = [c.get("config").villageApiKey];
  c.set("tokenTarget", targetOf(index, secrets));
  if (index.scopes.includes(ADMIN_SCOPE)) {
    throw new ProblemError(
      "forbidden",
      `Tokens holding ${ADMIN_SCOPE} are made and managed only by the token CLI's direct KV path.`,
      { reason: "escalation" },
    );
  }
  return index;
}

type Handler = (c: Ctx) => Promise<Response>;

/**
 * One admin route: off unless `TOKEN_ADMIN` is on (then 404, as for a path that does not
 * exist), then authentication, the caller limiter, the scope, and `handle`. A refusal of a
 * change (`event`) after authentication is audited; reads are not (they change nothing).
 */
function adminRoute(event: TokenEvent | null, handle: Handler): Handler {
  return async function tokenAdmin(c) {
    if (!tokenAdminOf(c.env)) throw new ProblemError("not-found", "No such route.");
    c.set("config", configOf(c.env));
    let limited = false;
    try {
      await authenticate(c);
      await limitCaller(c);
      limited = true;
      assertOrigin(c); // admin tokens have no origins: any browser is refused (after the limiter)
      const p = c.get("principal");
      if (p.kind !== "token" || !p.scopes.includes(ADMIN_SCOPE)) {
        throw insufficientScope(`This token lacks the ${ADMIN_SCOPE} scope.`, ADMIN_SCOPE);
      }
      return await handle(c);
    } catch (err) {
      if (event) await recordRefusal(c, event, err, limited);
      throw err;
    }
  };
}

export const tokens = new Hono<AppEnv>();

tokens.post(
  "/",
  adminRoute("token.create", async function createTokenRoute(c) {
    const body = await readBody(c, tokenSchemas().create);
    const secrets = [c.get("config").villageApiKey];
    c.set("tokenTarget", targetOf(body, secrets));
    if (body.scopes.includes(ADMIN_SCOPE)) {
      throw insufficientScope(
        `A token made over HTTP may not hold ${ADMIN_SCOPE}; only the token CLI's direct KV path makes one.`,
        ADMIN_SCOPE,
        "escalation",
      );
    }
    const input = { ...body, expiresAt: body.expires_at ? new Date(body.expires_at) : undefined };
    let record: TokenRecord;
    try {
      record = buildRecord(input);
    } catch (err) {
      throw invalid([{ field: "", pointer: "", detail: (err as Error).message }]);
    }
    await recordAction(c, "token.create", targetOf(record, secrets));
    const { secret } = await store(createToken(c.env.TOKENS, input, record));
    return respondJson(c, { token: secret, id: record.id, record }, 201);
  }),
);

tokens.get(
  "/",
  adminRoute(null, async function listTokensRoute(c) {
    const repeated = Object.entries(c.req.queries()).filter(([, values]) => values.length > 1);
    const parsed = tokenSchemas().listQuery.safeParse(c.req.query());
    if (repeated.length || !parsed.success) {
      throw new ProblemError("invalid-request", "The token query is not valid.", {
        errors: parsed.success
          ? repeated.map(([field]) => ({ field, pointer: "", detail: "Give this parameter once." }))
          : fieldErrors(parsed.error.issues, "query"),
      });
    }
    const q = parsed.data;
    const max = q.limit ?? DEFAULT_LIMIT;
    const wanted = (t: ListedToken) =>
      (q.revoked === undefined || (t.status === "revoked") === (q.revoked === "true")) &&
      (q.expiring === undefined || (t.status === "active" && Date.parse(t.expires_at ?? "") <= q.expiring));
    const out: ListedToken[] = [];
    let cursor = q.cursor ?? null;
    for (let calls = 0; calls < PAGE_MAX_LIST_CALLS && out.length < max && (calls === 0 || cursor); calls++) {
      const page = await store(
        listTokenPage(c.env.TOKENS, { cursor: cursor ?? undefined, limit: max - out.length }),
      );
      out.push(...page.tokens.filter(wanted));
      cursor = page.cursor;
    }
    return respondJson(c, { tokens: out, cursor }, 200, cursor === null ? {} : { "X-Next-Cursor": cursor });
  }),
);

tokens.get(
  "/:id",
  adminRoute(null, async (c) => respondJson(c, publicView(await tokenOf(c)))),
);

tokens.post(
  "/:id/revoke",
  adminRoute("token.revoke", async function revokeTokenRoute(c) {
    const index = await managedToken(c);
    if (!index.revoked_at) await recordAction(c, "token.revoke", c.get("tokenTarget") as TokenEventTarget);
    const revoked = await store(revokeToken(c.env.TOKENS, index.id));
    if (!revoked) throw noSuchToken();
    const { wasRevoked, ...record } = revoked;
    return respondJson(c, { ...publicView(record), already_revoked: wasRevoked, note: PROPAGATION_NOTE });
  }),
);

tokens.post(
  "/:id/rotate",
  adminRoute("token.rotate", async function rotateTokenRoute(c) {
    const index = await managedToken(c);
    const overlap = (await readBody(c, tokenSchemas().rotate, true)).overlap_seconds ?? DEFAULT_OVERLAP_S;
    const now = new Date();
    if (statusOf(index, now.getTime()) !== "active") {
      throw new ProblemError("not-found", "This token is revoked or expired: create a new one instead.");
    }
    const until = overlapEnd(index, overlap, now);
    await recordAction(c, "token.rotate", targetOf(index, [c.get("config").villageApiKey], until));
    const rotated = await store(rotateToken(c.env.TOKENS, index.id, overlap, now));
    if (typeof rotated === "string") throw noSuchToken();
    const record = publicView(rotated.index, now.getTime());
    return respondJson(c, { token: rotated.secret, id: index.id, record, note: PROPAGATION_NOTE });
  }),
);
