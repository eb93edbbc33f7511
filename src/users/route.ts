/** `PATCH /users/:email`: validate, authorize, forward to Village, answer. */
import { type Context, Hono } from "hono";
import { recordIntent, recordOutcome, recordRefusal } from "../audit/record.ts";
import {
  assertMayTouch,
  assertOrigin,
  authenticate,
  canWriteAny,
  canWriteField,
} from "../auth/authenticate.ts";
import { limitCaller, limitPhoneChange } from "../auth/rate-limit.ts";
import { insufficientScope } from "../auth/refusals.ts";
import { configOf } from "../config.ts";
import { readJsonBody } from "../http/body.ts";
import type { AppEnv } from "../http/context.ts";
import { ProblemError } from "../http/errors.ts";
import { logEvent } from "../http/log.ts";
import { respondJson } from "../http/respond.ts";
import { parseEmailSegment, rawEmailSegment, type TargetEmail } from "../model/email.ts";
import { changedFields } from "../model/fields.ts";
import { type Changes, changeSchema, MAX_BODY_BYTES, toFieldErrors } from "./changes.ts";
import { buildUpstreamRequest, sendUpstream, type UpstreamResult } from "./upstream.ts";

/** Turns an upstream result that is not a success into the caller's problem. */
function upstreamProblem(result: UpstreamResult): ProblemError {
  switch (result.outcome) {
    case "not_found":
      return new ProblemError("user-not-found", "Village has no user with this email in the network.");
    case "rejected_by_village":
      return new ProblemError("village-rejected", "Village rejected the change.");
    case "timeout":
      return new ProblemError(
        "gateway-timeout",
        "Village did not answer in time; the change may or may not apply.",
      );
    default:
      return new ProblemError("bad-gateway", "Village could not take the change; try again later.");
  }
}

/**
 * The request URL holds nothing but the path: no query (this route defines none) and no
 * fragment (no HTTP request line carries one). Under `wrangler dev` the runtime builds the URL
 * from the Host header, so `Host: x/users/b@other.com?` turns the real path into a query: that
 * is refused here. What the runtime leaves no trace of (`#`, userinfo) is in README, Limits.
 */
function assertPlainUrl(c: Context<AppEnv>): void {
  const url = c.req.url;
  if (url.includes("?") || url.includes("#")) {
    throw new ProblemError("invalid-request", "PATCH /users/:email takes no query string.");
  }
}

/** The caller must be able to change users at all; then the path must name one valid address. */
function parseTarget(c: Context<AppEnv>): TargetEmail {
  if (!canWriteAny(c.get("principal"))) {
    throw insufficientScope("This token cannot change users.", "users:write");
  }
  const target = parseEmailSegment(rawEmailSegment(c.req.url));
  c.set("target", target);
  return target;
}

/** Every field of the change must be one the caller may write: the whole change or nothing. */
function authorizeFields(c: Context<AppEnv>, changes: Changes): void {
  const principal = c.get("principal");
  const denied = changedFields(changes).filter((f) => !canWriteField(principal, f));
  if (denied.length > 0) {
    throw insufficientScope(
      `This token may not change ${denied.join(", ")}; the whole change was refused.`,
      denied.map((f) => `users:write:${f}`).join(" "),
      "field_scope",
    );
  }
}

/** Records the intent, forwards the change to Village, records the outcome and answers. */
async function forward(c: Context<AppEnv>, target: TargetEmail, changes: Changes): Promise<Response> {
  const cfg = c.get("config");
  const requestId = c.get("requestId");
  const upstreamRequest = buildUpstreamRequest(cfg, target.address, changes, requestId);
  const intent = await recordIntent(c, target, changes); // invariant 5: no intent, no forwarding
  const result = await sendUpstream(upstreamRequest, cfg.upstreamTimeoutMs);
  recordOutcome(c, intent, result);
  c.set("upstream", { outcome: result.outcome, status: result.status });
  if (result.outcome === "village_auth_failed") {
    logEvent("error", "village_key_rejected", c, {
      upstream_status: result.status,
      detail: "Village refused our API key: check VILLAGE_API_KEY and VILLAGE_NETWORK_ID",
    });
  } else if (result.outcome !== "accepted") {
    logEvent("warn", "upstream_failed", c, {
      outcome: result.outcome,
      upstream_status: result.status,
      note: result.note,
    });
  }
  if (result.outcome !== "accepted") throw upstreamProblem(result);
  return respondJson(c, { status: "accepted", request_id: requestId, email: target.address, changes }, 202);
}

export const users = new Hono<AppEnv>();

/**
 * One handler, its steps plain calls in the order that refuses cheapest first: authenticate,
 * rate-limit the caller, check the token's origin, parse the target, read and validate the
 * body, authorize the target's domain and the fields, rate-limit phone changes, then forward.
 * Every refusal that may be audited comes after the caller limiter (DESIGN invariant 8); the
 * body is read before the domain check so that a domain refusal records the fields it tried.
 */
users.patch("/:email", async function changeUser(c) {
  c.set("config", configOf(c.env));
  try {
    await authenticate(c);
    assertPlainUrl(c);
    await limitCaller(c);
    assertOrigin(c);
    const target = parseTarget(c);
    const changes = await readJsonBody(c, changeSchema(), {
      detail: "The change is not valid.",
      maxBytes: MAX_BODY_BYTES,
      fieldErrors: toFieldErrors,
    });
    c.set("changes", changes);
    assertMayTouch(c.get("principal"), target);
    authorizeFields(c, changes);
    if (changes.phone_number !== undefined) await limitPhoneChange(c, target.address);
    return await forward(c, target, changes);
  } catch (err) {
    await recordRefusal(c, err);
    throw err;
  }
});
