/**
 * An in-memory KV namespace for the benchmark: the parts of the Workers KV API the app uses
 * (single-key get/getWithMetadata as text/json/arrayBuffer, put with metadata and expiry,
 * delete, prefix list in key order with a cursor). Values are kept as strings and parsed on
 * every read, as KV does. Not used by the deployed Worker.
 */

interface Entry {
  value: string;
  metadata: unknown;
  expiration?: number;
}

type ValueType = "text" | "json" | "arrayBuffer" | "stream";

function typeOf(arg: unknown): ValueType {
  if (arg === undefined) return "text";
  if (typeof arg === "string") return arg as ValueType;
  return ((arg as { type?: ValueType }).type ?? "text") as ValueType;
}

function decode(value: string, type: ValueType): unknown {
  if (type === "json") return JSON.parse(value);
  if (type === "arrayBuffer") return new TextEncoder().encode(value).buffer;
  if (type === "stream") return new Response(value).body;
  return value;
}

/** Creates an empty in-memory namespace. */
export function memoryKv(): KVNamespace {
  const store = new Map<string, Entry>();
  const live = (key: string): Entry | undefined => {
    const entry = store.get(key);
    if (entry?.expiration !== undefined && entry.expiration * 1000 <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return entry;
  };
  const kv = {
    async get(key: string, arg?: unknown) {
      if (typeof key !== "string") throw new Error("memoryKv: bulk get is not implemented");
      const entry = live(key);
      return entry ? decode(entry.value, typeOf(arg)) : null;
    },
    async getWithMetadata(key: string, arg?: unknown) {
      const entry = live(key);
      return entry
        ? { value: decode(entry.value, typeOf(arg)), metadata: entry.metadata ?? null, cacheStatus: null }
        : { value: null, metadata: null, cacheStatus: null };
    },
    async put(key: string, value: unknown, options: KVNamespacePutOptions = {}) {
      if (typeof value !== "string") throw new Error("memoryKv: only string values are implemented");
      if (key.length > 512) throw new Error("KV key longer than 512 bytes");
      if (options.expirationTtl !== undefined && options.expirationTtl < 60) {
        throw new Error("KV expirationTtl must be at least 60");
      }
      const metadata = options.metadata ?? null;
      if (metadata !== null && JSON.stringify(metadata).length > 1024) {
        throw new Error("KV metadata longer than 1024 bytes");
      }
      const expiration =
        options.expiration ??
        (options.expirationTtl === undefined
          ? undefined
          : Math.floor(Date.now() / 1000) + options.expirationTtl);
      store.set(key, { value, metadata, expiration });
    },
    async delete(key: string) {
      store.delete(key);
    },
    async list(options: KVNamespaceListOptions = {}) {
      const prefix = options.prefix ?? "";
      const limit = Math.min(options.limit ?? 1000, 1000);
      const after = options.cursor ?? "";
      const names = [...store.keys()]
        .filter((k) => k.startsWith(prefix) && k > after && live(k))
        .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      const page = names.slice(0, limit);
      const complete = page.length === names.length;
      return {
        keys: page.map((name) => {
          const entry = store.get(name) as Entry;
          return {
            name,
            ...(entry.expiration === undefined ? {} : { expiration: entry.expiration }),
            ...(entry.metadata === null ? {} : { metadata: entry.metadata }),
          };
        }),
        list_complete: complete,
        ...(complete ? {} : { cursor: page[page.length - 1] }),
        cacheStatus: null,
      };
    },
  };
  return kv as unknown as KVNamespace;
}
