/**
 * The one door to Village. The request is built from an allowlist only (DESIGN invariant 2)
 * and Village's answer is reduced to an outcome: no upstream body or header ever
 * reaches a caller (invariant 7).
 */

import type { Config } from "../config.ts";
import { ProblemError } from "../http/errors.ts";
import type { Changes } from "./changes.ts";

export const USER_AGENT = "village-edge/0.1";

export type UpstreamOutcome =
  | "accepted"
  | "not_found"
  | "rejected_by_village"
  | "village_auth_failed"
  | "upstream_error"
  | "timeout";

export interface UpstreamResult {
  outcome: UpstreamOutcome;
  /** Village's HTTP status, when it answered. */
  status?: number;
  latencyMs: number;
  /** How many times the request was sent: 1, or 2 after a retry. */
  attempts: number;
  /** For logs only: what went wrong, never upstream content. */
  note?: string;
}

/**
 * The upstream call, built and checked but not sent: `fetch(url, init)` sends it. It stays
 * plain data so that the runtime builds the one Request itself (building one here and handing
 * it to `fetch` would build it twice).
 */
export interface UpstreamRequest {
  readonly url: string;
  readonly init: RequestInit & { method: "PATCH"; redirect: "manual"; headers: Record<string, string> };
}

/**
 * Builds the upstream request and checks, before anything is sent, that its URL has the
 * configured origin and exactly the path shape `<base path>/networks/<id>/users/<email>`.
 */
export function buildUpstreamRequest(
  config: Readonly<Config>,
  email: string,
  changes: Changes,
  requestId: string,
): UpstreamRequest {
  const path = `/networks/${encodeURIComponent(config.villageNetworkId)}/users/${encodeURIComponent(email)}`;
  const url = new URL(`${config.villageBase}${path}`);
  // villageBase is origin + path prefix (config.ts); anything else fails the check below.
  const basePath = config.villageBase.startsWith(config.villageOrigin)
    ? config.villageBase.slice(config.villageOrigin.length).replace(/\/+$/, "")
    : undefined;
  const segments = url.pathname.slice(basePath?.length).split("/");
  const shapeOk =
    basePath !== undefined &&
    url.origin === config.villageOrigin &&
    url.pathname === `${basePath}${path}` &&
    url.search === "" &&
    url.hash === "" &&
    segments.length === 5 &&
    segments[1] === "networks" &&
    segments[3] === "users" &&
    decodeURIComponent(segments[4]) === email &&
    decodeURIComponent(segments[2]) === config.villageNetworkId;
  if (!shapeOk) {
    throw new ProblemError("internal", "The request could not be forwarded.", {
      logDetail: "upstream URL failed its shape check",
    });
  }
  const body: Record<string, string> = {};
  if (changes.first_name !== undefined) body.first_name = changes.first_name;
  if (changes.last_name !== undefined) body.last_name = changes.last_name;
  if (changes.phone_number !== undefined) body.phone_number = changes.phone_number;
  return {
    url: url.href,
    init: {
      method: "PATCH",
      redirect: "manual",
      headers: {
        Authorization: `Bearer ${config.villageApiKey}`,
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-Request-Id": requestId,
        "User-Agent": USER_AGENT,
      },
      body: JSON.stringify(body),
    },
  };
}

/**
 * Drops the upstream body unread: the status alone decides the outcome and no upstream byte
 * ever reaches a caller, so reading it would only cost CPU and time (and a trickling body
 * could hold the request until the deadline). Cancelling frees the connection; nothing waits
 * for it, and a failure to cancel changes nothing.
 */
function discard(res: Response): void {
  res.body?.cancel().catch(() => {});
}

/** Maps Village's status to an outcome. 2xx is success: Village queues the work. */
export function classify(status: number): UpstreamOutcome {
  if (status >= 200 && status < 300) return "accepted";
  if (status === 404) return "not_found";
  if (status === 400 || status === 422) return "rejected_by_village";
  if (status === 401 || status === 403) return "village_auth_failed";
  return "upstream_error";
}

/** Statuses after which one retry is allowed: the gateway in front of Village failed, not Village's decision. */
const RETRY_STATUSES = new Set([502, 503, 504]);
/** A retry is attempted only if at least this much of the deadline is left after the jitter. */
const MIN_RETRY_BUDGET_MS = 500;
/** Random pause before the retry, so that many callers do not retry in step. */
const jitterMs = () => 50 + Math.floor(Math.random() * 200);

type Attempt = { res: Response } | { error: unknown };

async function attempt(req: UpstreamRequest, signal: AbortSignal): Promise<Attempt> {
  try {
    const res = await fetch(req.url, { ...req.init, signal, redirect: "manual" });
    discard(res);
    return { res };
  } catch (error) {
    return { error };
  }
}

/**
 * Sends the built request within one total deadline; never follows redirects, never throws.
 * At most one retry, only after a connection error or a 502/503/504, after a jittered pause,
 * and only when enough of the deadline is left. Any other answer is final.
 */
export async function sendUpstream(req: UpstreamRequest, timeoutMs: number): Promise<UpstreamResult> {
  const started = Date.now();
  const signal = AbortSignal.timeout(timeoutMs);
  let result = await attempt(req, signal);
  let attempts = 1;
  const retryable = "res" in result ? RETRY_STATUSES.has(result.res.status) : !signal.aborted;
  if (retryable) {
    const pause = jitterMs();
    if (timeoutMs - (Date.now() - started) - pause >= MIN_RETRY_BUDGET_MS) {
      await new Promise((resolve) => setTimeout(resolve, pause));
      result = await attempt(req, signal);
      attempts = 2;
    }
  }
  const latencyMs = Date.now() - started;
  if ("res" in result) {
    const { status } = result.res;
    return {
      outcome: classify(status),
      status,
      latencyMs,
      attempts,
      note: status >= 300 && status < 400 ? "redirect not followed" : undefined,
    };
  }
  const timedOut = signal.aborted;
  const error = result.error;
  return {
    outcome: timedOut ? "timeout" : "upstream_error",
    latencyMs,
    attempts,
    note: timedOut
      ? `no answer within ${timeoutMs} ms`
      : `fetch failed: ${error instanceof Error ? error.name : "error"}`,
  };
}
