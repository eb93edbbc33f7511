/**
 * A KV namespace that counts the operations made on it, for `npm run bench`'s
 * `kv ops per change` line: reads (`get`, `getWithMetadata`, `list`; a bulk get counts once
 * per key, as KV bills it) and writes (`put`, `delete`).
 */

/** Operations counted since the counter was made or reset. */
export interface KvCounts {
  reads: number;
  writes: number;
}

/** Wraps `kv` so that every operation on it adds to `counts`. */
export function countingKv(kv: KVNamespace, counts: KvCounts): KVNamespace {
  const inner = kv as unknown as Record<string, (...args: unknown[]) => unknown>;
  const read =
    (name: string) =>
    (...args: unknown[]) => {
      counts.reads += Array.isArray(args[0]) ? args[0].length : 1;
      return inner[name](...args);
    };
  const write =
    (name: string) =>
    (...args: unknown[]) => {
      counts.writes += 1;
      return inner[name](...args);
    };
  return {
    get: read("get"),
    getWithMetadata: read("getWithMetadata"),
    list: read("list"),
    put: write("put"),
    delete: write("delete"),
  } as unknown as KVNamespace;
}
