/**
 * src/auth/tokens.ts and the audit modules the verify CLI runs (src/audit/{store,sign,digest,query,verify}.ts)
 * are shared with the Worker and name the Workers `KVNamespace` type. The full Workers types
 * (worker-configuration.d.ts) clash with Node's, so Node-side type checks get only the part of
 * `KVNamespace` those modules use.
 */
type KVListKey<M> = { name: string; metadata?: M; expiration?: number };
type KVListPage<M> =
  | { keys: KVListKey<M>[]; list_complete: false; cursor: string }
  | { keys: KVListKey<M>[]; list_complete: true };
type KVNamespace = {
  get(key: string, type: "text"): Promise<string | null>;
  get(key: string, type: "json"): Promise<unknown>;
  get<T = unknown>(key: string, type: "json"): Promise<T | null>;
  get<T = unknown>(keys: string[], type: "json"): Promise<Map<string, T | null>>;
  get(keys: string[], type: "text"): Promise<Map<string, string | null>>;
  getWithMetadata<M = unknown>(
    keys: string[],
    type: "text",
  ): Promise<Map<string, { value: string | null; metadata: M | null } | null>>;
  list<M = unknown>(options?: {
    prefix?: string;
    cursor?: string | null;
    limit?: number;
  }): Promise<KVListPage<M>>;
  put(key: string, value: string, options?: { expiration?: number; metadata?: unknown }): Promise<void>;
  delete(key: string): Promise<void>;
};
/** The bindings, as far as src/config.ts (reached through type imports) reads them. */
// biome-ignore lint/suspicious/noExplicitAny: Node never builds an Env; this only lets the shared modules type-check
type Env = Record<string, any>;
