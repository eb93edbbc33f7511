/**
 * Where the token CLI's commands go: the token management API of a running Worker
 * ({@link apiBackend}, fetch only: nothing of wrangler or workerd is loaded), or the KV
 * namespaces directly (scripts/lib/token-direct.ts, imported only when needed). Both answer
 * in the same shapes, so the CLI prints the same either way.
 */
import type { ListedToken, NewToken, TokenRecord, TokenView } from "../../src/auth/tokens.ts";

/** What a command needs of a store of tokens. */
export interface TokenBackend {
  /** Where the tokens are, as the CLI names it: `local state (...)`, `http://127.0.0.1:8787`. */
  label: string;
  create(input: NewToken): Promise<{ secret: string; record: TokenRecord }>;
  /** Every token, revoked ones included. */
  list(): Promise<ListedToken[]>;
  show(id: string): Promise<TokenView | null>;
  revoke(id: string): Promise<(TokenView & { wasRevoked: boolean }) | null>;
  rotate(
    id: string,
    overlapS: number,
  ): Promise<{ secret: string; record: TokenView } | "not_found" | "inactive">;
  close(): Promise<void>;
}

/** The server refused or failed: exit 1 with its problem's detail. */
export class ApiError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}

/** The token management API at `base`, authenticated with `adminToken`. */
export function apiBackend(base: string, adminToken: string): TokenBackend {
  async function call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; json: T }> {
    let res: Response;
    try {
      res = await fetch(`${base}${path}`, {
        method,
        headers: {
          Authorization: `Bearer ${adminToken}`,
          Accept: "application/json",
          "User-Agent": "village-edge token CLI",
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(`cannot reach ${base} (${(err as Error).message}); is the Worker running?`, 0);
    }
    const json = (await res.json().catch(() => null)) as T;
    return { status: res.status, json };
  }
  const refused = (status: number, json: unknown): ApiError => {
    const problem = (json ?? {}) as { detail?: string; errors?: { field: string; detail: string }[] };
    const errors = (problem.errors ?? []).map((e) => `\n  ${e.field || "body"}: ${e.detail}`).join("");
    const hint =
      status === 404 && problem.detail === "No such route."
        ? ' (the token API is off: TOKEN_ADMIN is not "on" there; use --local or --remote)'
        : "";
    return new ApiError(
      `${base} answered ${status}: ${problem.detail ?? "no detail"}${hint}${errors}`,
      status,
    );
  };
  const id404 = (status: number, json: unknown) =>
    status === 404 && (json as { detail?: string } | null)?.detail === "No token has this id.";
  return {
    label: base,
    async create(input) {
      const { status, json } = await call<{ token: string; record: TokenRecord }>("POST", "/tokens", {
        name: input.name,
        scopes: input.scopes,
        domains: input.domains,
        origins: input.origins,
        expires_at: input.expiresAt?.toISOString(),
      });
      if (status !== 201) throw refused(status, json);
      return { secret: json.token, record: json.record };
    },
    async list() {
      const out: ListedToken[] = [];
      let cursor: string | null = null;
      for (let page = 0; page < 10_000; page++) {
        const query: URLSearchParams = new URLSearchParams({ limit: "1000", ...(cursor ? { cursor } : {}) });
        const { status, json }: { status: number; json: { tokens: ListedToken[]; cursor: string | null } } =
          await call<{ tokens: ListedToken[]; cursor: string | null }>("GET", `/tokens?${query}`);
        if (status !== 200) throw refused(status, json);
        out.push(...json.tokens);
        cursor = json.cursor;
        if (cursor === null) break;
      }
      return out;
    },
    async show(id) {
      const { status, json } = await call<TokenView>("GET", `/tokens/${id}`);
      if (id404(status, json)) return null;
      if (status !== 200) throw refused(status, json);
      return json;
    },
    async revoke(id) {
      const { status, json } = await call<TokenView & { already_revoked: boolean; note?: string }>(
        "POST",
        `/tokens/${id}/revoke`,
      );
      if (id404(status, json)) return null;
      if (status !== 200) throw refused(status, json);
      const { already_revoked, note: _note, ...view } = json;
      return { ...view, wasRevoked: already_revoked };
    },
    async rotate(id, overlapS) {
      const { status, json } = await call<{ token: string; record: TokenView; detail?: string }>(
        "POST",
        `/tokens/${id}/rotate`,
        { overlap_seconds: overlapS },
      );
      if (id404(status, json)) return "not_found";
      if (status === 404) return "inactive";
      if (status !== 200) throw refused(status, json);
      return { secret: json.token, record: json.record };
    },
    async close() {},
  };
}
