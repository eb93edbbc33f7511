/**
 * The local Village sandbox's wire types, free of Node imports so that both the sandbox
 * (fakes/sandbox.ts, Node) and the workerd tests (test/helpers.ts) use the same definitions.
 */

/** A Village user as the sandbox stores it. */
export interface SandboxUser {
  email: string;
  first_name: string;
  last_name: string;
  phone_number: string;
}

/** One request that reached the Patch User route, as recorded per network. `authorization` is redacted. */
export interface ReceivedRequest {
  at: string;
  method: string;
  path: string;
  email: string;
  headers: Record<string, string>;
  body: string;
  status: number | string;
}

/** A fault, consumed one per incoming PATCH (in order) instead of normal handling. */
export type Fault =
  | {
      status: number;
      body?: string;
      bodyBytes?: number;
      contentType?: string;
      headers?: Record<string, string>;
      delayMs?: number;
    }
  | { action: "hang" }
  | { action: "reset" }
  | { action: "redirect"; status?: 301 | 302 | 307 | 308; location: string }
  | { action: "slow-body"; status?: number; chunks: number; intervalMs: number };
