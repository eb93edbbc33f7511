/**
 * The request mix of `npm run load`: every request planned up front with what it must get
 * (status, problem type, whether it reaches Village, what the audit trail must show), shuffled
 * by a seeded generator so one seed always gives the same mix in the same order.
 */
import { generateSecret } from "../../src/auth/tokens.ts";

/** Which token a request presents. `writer`/`phone`/`reader` are minted by the token CLI. */
export type TokenKind = "writer" | "phone" | "reader" | "none" | "unknown" | "garbage";
/** The minted kinds and their `token create` flags. */
export const MINTED = {
  writer: ["--scope", "users:write"],
  phone: ["--scope", "users:write:phone_number", "--domain", "example.com"],
  reader: ["--scope", "audit:read"],
} as const;
export type MintedKind = keyof typeof MINTED;

/** What the audit trail must hold for a request: its outcome, or nothing at all. */
export type AuditExpect = "accepted" | "not_found" | "invalid" | "denied" | null;

export interface Planned {
  /** `X-Request-Id`: the proxy keeps it, forwards it and audits it. */
  id: string;
  cls: string;
  /** The target address as the proxy normalizes it; undefined for malformed ones. */
  email?: string;
  /** `/users/<segment>`, already encoded. */
  path: string;
  body: string;
  token: TokenKind;
  /** Which minted token of its kind (set by {@link assignTokens}). */
  slot: number;
  status: number;
  /** Problem type slug for refusals. */
  problem?: string;
  /** Refusal reason the trail must name (src/http/reasons.ts), for audited refusals. */
  reason?: string;
  audit: AuditExpect;
  /** Phone-flood group: these requests share one email; the phone limiter decides 202 or 429. */
  flood?: string;
}

interface Spec {
  weight: number;
  token: TokenKind;
  status: number;
  problem?: string;
  reason?: string;
  audit: AuditExpect;
  /** Target email, or a raw (invalid) path segment when `raw` is set. */
  target: (i: number) => { email: string; raw?: string };
  body: (i: number) => string;
}

const NAMES = ["Ada", "Grace", "Zoë", "José", "Łukasz", "Amélie", "Nguyễn", "Søren", "Chidi", "Mei"];
const name = (i: number) => `${NAMES[i % NAMES.length].normalize("NFC")} ${i}`;
/** E.164 numbers libphonenumber calls possible (+1 202 555 xxxx); what the proxy forwards unchanged. */
const phone = (i: number) => `+1202555${String(i % 10_000).padStart(4, "0")}`;
const json = (o: unknown) => JSON.stringify(o);

/** A Village user for each request that must reach Village: `user-<n>@<domain>`. */
const known = (domain: string) => (i: number) => ({ email: `user-${i}@${domain}` });
const BAD_SEGMENTS = ["not-an-email", "a%40b", "x%40example.com%2Fy", "%40example.com", "a%40exa_mple.com"];

/** The mix, in percent of all requests. Phone floods come in groups of (phone limit + 1). */
const SPECS: Record<string, Spec> = {
  "valid first_name": {
    weight: 15,
    token: "writer",
    status: 202,
    audit: "accepted",
    target: known("example.com"),
    body: (i) => json({ first_name: name(i) }),
  },
  "valid last_name": {
    weight: 14,
    token: "writer",
    status: 202,
    audit: "accepted",
    target: known("example.net"),
    body: (i) => json({ last_name: name(i) }),
  },
  "valid first+last": {
    weight: 10,
    token: "writer",
    status: 202,
    audit: "accepted",
    target: known("example.org"),
    body: (i) => json({ first_name: name(i), last_name: name(i + 1) }),
  },
  "valid phone": {
    weight: 10,
    token: "writer",
    status: 202,
    audit: "accepted",
    target: known("example.net"),
    body: (i) => json({ phone_number: phone(i) }),
  },
  "valid phone, field+domain-limited token": {
    weight: 6,
    token: "phone",
    status: 202,
    audit: "accepted",
    target: known("example.com"),
    body: (i) => json({ phone_number: phone(i) }),
  },
  "unknown user (404 from Village)": {
    weight: 5,
    token: "writer",
    status: 404,
    problem: "user-not-found",
    audit: "not_found",
    target: (i) => ({ email: `ghost-${i}@example.com` }),
    body: (i) => json({ first_name: name(i) }),
  },
  "invalid: empty first_name": {
    weight: 3,
    token: "writer",
    status: 400,
    problem: "validation-failed",
    reason: "validation",
    audit: "invalid",
    target: known("example.com"),
    body: () => json({ first_name: "   " }),
  },
  "invalid: phone not international": {
    weight: 3,
    token: "writer",
    status: 400,
    problem: "validation-failed",
    reason: "validation",
    audit: "invalid",
    target: known("example.com"),
    body: () => json({ phone_number: "555-0100" }),
  },
  "invalid: unknown field": {
    weight: 3,
    token: "writer",
    status: 400,
    problem: "validation-failed",
    reason: "validation",
    audit: "invalid",
    target: known("example.com"),
    body: (i) => json({ first_name: name(i), email: "other@example.com" }),
  },
  "invalid: empty change": {
    weight: 2,
    token: "writer",
    status: 400,
    problem: "validation-failed",
    reason: "validation",
    audit: "invalid",
    target: known("example.com"),
    body: () => "{}",
  },
  "invalid: malformed JSON": {
    weight: 2,
    token: "writer",
    status: 400,
    problem: "malformed-json",
    reason: "malformed_json",
    audit: "invalid",
    target: known("example.com"),
    body: () => '{"first_name": "Ada"',
  },
  "invalid: bad email in path": {
    weight: 2,
    token: "writer",
    status: 400,
    problem: "invalid-email",
    reason: "invalid_email",
    audit: "invalid",
    target: (i) => ({ email: "", raw: BAD_SEGMENTS[i % BAD_SEGMENTS.length] }),
    body: (i) => json({ first_name: name(i) }),
  },
  "refused: no token": {
    weight: 4,
    token: "none",
    status: 401,
    problem: "unauthorized",
    audit: null,
    target: known("example.com"),
    body: (i) => json({ first_name: name(i) }),
  },
  "refused: unknown token": {
    weight: 3,
    token: "unknown",
    status: 401,
    problem: "unauthorized",
    audit: null,
    target: known("example.com"),
    body: (i) => json({ first_name: name(i) }),
  },
  "refused: garbage token": {
    weight: 3,
    token: "garbage",
    status: 401,
    problem: "unauthorized",
    audit: null,
    target: known("example.com"),
    body: (i) => json({ first_name: name(i) }),
  },
  "refused: field not in token's scope": {
    weight: 4,
    token: "phone",
    status: 403,
    problem: "forbidden",
    reason: "field_scope",
    audit: "denied",
    target: known("example.com"),
    body: (i) => json({ first_name: name(i) }),
  },
  "refused: domain not in token's domains": {
    weight: 4,
    token: "phone",
    status: 403,
    problem: "forbidden",
    reason: "domain",
    audit: "denied",
    target: known("example.org"),
    body: (i) => json({ phone_number: phone(i) }),
  },
  "refused: audit:read token": {
    weight: 2,
    token: "reader",
    status: 403,
    problem: "forbidden",
    reason: "scope",
    audit: "denied",
    target: known("example.com"),
    body: (i) => json({ last_name: name(i) }),
  },
};
/** Share of requests in phone floods (percent); the remainder of 100 after {@link SPECS}. */
const FLOOD_WEIGHT = 100 - Object.values(SPECS).reduce((sum, s) => sum + s.weight, 0);
const FLOOD_CLASS = "phone flood (same email)";

/** mulberry32: a small seeded generator, so one seed is one run. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Encodes an email for the path the way a careful client does. */
const segment = (email: string) => encodeURIComponent(email);

/**
 * Plans `total` requests: each class gets its share (rounded down, the rest goes to the first
 * class), shuffled; then phone floods, each `phoneLimit + 1` requests to one email in a row, at
 * random places. Every request that must reach Village targets its own user (`user-<n>@…`), so no
 * email sees a second phone change outside the floods.
 */
export function planRequests(total: number, phoneLimit: number, seed: number, runTag: string): Planned[] {
  const rand = random(seed);
  const groupSize = phoneLimit + 1;
  const floods = Math.floor((total * FLOOD_WEIGHT) / 100 / groupSize);
  const counts = Object.entries(SPECS).map(([cls, spec]) => [cls, Math.floor((total * spec.weight) / 100)]);
  const planned = counts.reduce((sum, [, n]) => sum + Number(n), floods * groupSize);
  counts[0][1] = Number(counts[0][1]) + total - planned;
  const out: Omit<Planned, "id">[] = [];
  let n = 0;
  for (const [cls, count] of counts) {
    const spec = SPECS[cls];
    for (let k = 0; k < Number(count); k++, n++) {
      const { email, raw } = spec.target(n);
      out.push({
        cls: String(cls),
        email: raw === undefined ? email : undefined,
        path: `/users/${raw ?? segment(email)}`,
        body: spec.body(n),
        token: spec.token,
        slot: 0,
        status: spec.status,
        problem: spec.problem,
        reason: spec.reason,
        audit: spec.audit,
      });
    }
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  // Each flood goes in as one block, so its requests are in flight together: rarely does one
  // straddle a boundary of the limiter's wall-clock window and pass more than the limit.
  for (let g = 0; g < floods; g++) {
    const email = `flood-${g}@example.com`;
    const block = Array.from({ length: groupSize }, () => ({
      cls: FLOOD_CLASS,
      email,
      path: `/users/${segment(email)}`,
      body: json({ phone_number: phone(n++) }),
      token: "writer" as const,
      slot: 0,
      status: 202, // or 429: see settleFloods in lib/load-checks.ts
      audit: "accepted" as const,
      flood: email,
    }));
    out.splice(Math.floor(rand() * (out.length + 1)), 0, ...block);
  }
  return out.map((p, i) => ({ ...p, id: `load-${runTag}-${String(i).padStart(6, "0")}` }));
}

/** True for a planned request whose refusal the trail records (it spends the token's refusal budget). */
const isAuditedRefusal = (p: Planned) => p.audit === "invalid" || p.audit === "denied";

/**
 * Spreads each minted kind's requests over as few tokens as keep every token at or under
 * `budget` requests and at or under `refusalBudget` audited refusals (beyond which a refusal is
 * logged only: docs/storage.md); returns how many tokens of each kind to mint.
 */
export function assignTokens(
  plan: Planned[],
  budget: number,
  refusalBudget = Number.POSITIVE_INFINITY,
): Record<MintedKind, number> {
  const used: Record<MintedKind, number> = { writer: 0, phone: 0, reader: 0 };
  const refused: Record<MintedKind, number> = { writer: 0, phone: 0, reader: 0 };
  const needed: Record<MintedKind, number> = { writer: 0, phone: 0, reader: 0 };
  for (const kind of Object.keys(MINTED) as MintedKind[]) {
    const mine = plan.filter((p) => p.token === kind);
    needed[kind] = Math.max(
      1,
      Math.ceil(mine.length / budget),
      Math.ceil(mine.filter(isAuditedRefusal).length / refusalBudget),
    );
  }
  for (const p of plan) {
    if (!(p.token in MINTED)) continue;
    const kind = p.token as MintedKind;
    // refusals and the rest are dealt round-robin separately, so both stay even across tokens
    p.slot = isAuditedRefusal(p) ? refused[kind]++ % needed[kind] : used[kind]++ % needed[kind];
  }
  return needed;
}

/** The `Authorization` value of a request that does not present a minted token. */
export function foreignAuthorization(kind: TokenKind): string | undefined {
  if (kind === "unknown") return `Bearer ${generateSecret()}`; // well formed, checksum right, not in KV
  if (kind === "garbage") return `Bearer vge_${"0".repeat(72)}`; // checksum wrong
  return undefined;
}

/** Sandbox users for every planned request that must find one. */
export function usersOf(plan: Planned[]) {
  const emails = new Set<string>();
  for (const p of plan) {
    if (p.email && (p.status === 202 || p.flood)) emails.add(p.email);
  }
  return [...emails].map((email, i) => ({
    email,
    first_name: "Load",
    last_name: `User ${i}`,
    phone_number: "+12025550000",
  }));
}
