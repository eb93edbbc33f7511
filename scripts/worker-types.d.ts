/**
 * src/auth/tokens.ts is shared with the Worker and names the Workers `KVNamespace` type in `findToken`,
 * which the Node tools never call. The full Workers types (worker-configuration.d.ts) clash with
 * Node's, so Node-side type checks get only the part of `KVNamespace` that module uses.
 */
type KVNamespace = { get(key: string, type: "json"): Promise<unknown> };
