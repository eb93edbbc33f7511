import { ProblemError } from "../http/errors.ts";

/** A target address after validation: what authorization checks, what is forwarded and audited. */
export interface TargetEmail {
  /** Local part as given, `@`, domain lowercased. */
  address: string;
  /** Lowercased domain, for the token's domain limits. */
  domain: string;
}

/** dot-atom local part (RFC 5322) without `/ \ ? # %` and quotes. */
export const LOCAL = /^[A-Za-z0-9!$&'*+=^_`{|}~-]+(\.[A-Za-z0-9!$&'*+=^_`{|}~-]+)*$/;
/** LDH labels, at least two, alphabetic or punycode TLD. */
export const DOMAIN = /^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9-]{1,59})$/;

const invalid = (detail: string) => new ProblemError("invalid-email", detail);

const PREFIX = "/users/";

/**
 * The raw (still percent-encoded) path segment after `/users/`. `Request.url` is already the
 * runtime's serialized URL, so its path is everything from the first `/` after the scheme's
 * `//` to the first `?` or `#` (as Hono reads it), without parsing the URL again.
 */
export function rawEmailSegment(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  let end = url.length;
  for (const mark of ["?", "#"]) {
    const at = url.indexOf(mark, start);
    if (at !== -1 && at < end) end = at;
  }
  const pathname = url.slice(start, end);
  return pathname.slice(pathname.indexOf(PREFIX) + PREFIX.length);
}

/**
 * Reads the email from the raw path of `/users/<segment>`, decoding it exactly once.
 * Hono's own param decoding is not used so that "once" is guaranteed here.
 */
export function parseEmailSegment(rawSegment: string): TargetEmail {
  if (rawSegment.length > 3 * 254) throw invalid("The email is too long.");
  let decoded: string;
  try {
    decoded = decodeURIComponent(rawSegment);
  } catch {
    throw invalid("The email in the path is not valid percent-encoding.");
  }
  return normalizeEmail(decoded);
}

/**
 * Validates an already decoded address and normalizes it (domain lowercased, local part
 * kept as given). Used for the path's email and for a signed-in user's `email` claim alike.
 */
export function normalizeEmail(decoded: string): TargetEmail {
  if (decoded.length > 254) throw invalid("The email must be at most 254 characters.");
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[/\\?#%\u0000-\u001f\u007f]/.test(decoded)) {
    throw invalid("The email contains a character that is not allowed.");
  }
  const at = decoded.lastIndexOf("@");
  if (at <= 0 || at === decoded.length - 1) throw invalid("The email must look like name@example.com.");
  const local = decoded.slice(0, at);
  const domain = decoded.slice(at + 1).toLowerCase();
  if (local.length > 64) throw invalid("The local part of the email must be at most 64 characters.");
  if (!LOCAL.test(local)) throw invalid("The local part of the email is not a valid address.");
  if (domain.length > 253 || !DOMAIN.test(domain)) throw invalid("The domain of the email is not valid.");
  return { address: `${local}@${domain}`, domain };
}

/**
 * The canonical form of a validated address, what every limiter and index keys on: lowercased
 * whole, so case variants of one mailbox are one target. What is forwarded and audited stays
 * `address`, as given.
 */
export const canonicalEmail = (address: string): string => address.toLowerCase();
