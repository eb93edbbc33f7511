/**
 * The scopes a token may hold and the limits of admin tokens and
 * rotation. A module of constants only (no zod), so that the token CLI's API path loads it
 * without the record schemas of src/auth/tokens.ts (which re-exports all of it).
 */

import { FIELDS } from "../model/fields.ts";

/** Scopes a token may hold. */
export const SCOPES = [
  "users:write",
  ...FIELDS.map((f) => `users:write:${f}` as const),
  "audit:read",
  "tokens:admin",
] as const;
export type Scope = (typeof SCOPES)[number];

/** The scope of the token management API (src/tokens/). Only the CLI's direct KV path mints it. */
export const ADMIN_SCOPE = "tokens:admin";
/** An admin token must expire, at most this far ahead (30 days). */
export const ADMIN_MAX_LIFETIME_MS = 30 * 86_400_000;
/** The longest a rotated token's old secret keeps working (7 days). */
export const MAX_OVERLAP_S = 7 * 86_400;
/** The overlap when the caller names none (1 hour). */
export const DEFAULT_OVERLAP_S = 3600;
