/**
 * workerd's own messages during a run (vitest main process): the pool writes them straight to
 * stderr/stdout, outside vitest's console capture, so neither `silent` nor the reporters see
 * them. This filter (installed by vitest.config.ts) scans every line for the secret canary and
 * anything shaped like a token, remembering hits for the summary reporter, and drops only the
 * runtime's known noise for situations the tests create on purpose (hung upstreams cut off,
 * non-ASCII request ids, NDJSON bodies read as text). Anything else is printed as before.
 */

/** Anything that looks like one of our tokens. */
const TOKEN = /vge_[0-9a-f]{72}/;

/** Runtime lines that tests cause on purpose: dropped. */
const NOISE = [
  /Network connection lost/,
  /disconnected: Connection reset by peer/,
  /^stack: .*workerd/,
  /^console warning; message = Called \.text\(\) on an HTTP body which does not appear to be text/,
  /^A header value for "[^"]+" contains non-ASCII characters/,
];

const LEAKS_KEY = Symbol.for("village-edge.runtime-leaks");

/** Lines of runtime output that carried a secret, for test/summary-reporter.ts. */
export function runtimeLeaks(): string[] {
  const store = globalThis as unknown as Record<symbol, string[] | undefined>;
  store[LEAKS_KEY] ??= [];
  return store[LEAKS_KEY];
}

/** Wraps `stream.write` with the scan and the noise filter. */
function filter(stream: NodeJS.WriteStream): void {
  const write = stream.write.bind(stream) as (chunk: unknown, ...rest: unknown[]) => boolean;
  stream.write = ((chunk: unknown, ...rest: unknown[]) => {
    if (typeof chunk !== "string" && !(chunk instanceof Uint8Array)) return write(chunk, ...rest);
    // Chunk by chunk, never buffered: the runtime writes each message as one `line\n` chunk.
    const text = typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8");
    const canary = process.env.VILLAGE_EDGE_CANARY_KEY;
    const kept = text.split("\n").filter((line: string, i: number, all: string[]) => {
      if ((canary && line.includes(canary)) || TOKEN.test(line)) runtimeLeaks().push(line.slice(0, 300));
      return i === all.length - 1 || !NOISE.some((re) => re.test(line));
    });
    const out = kept.join("\n");
    if (out) return write(out, ...rest);
    const callback = rest.find((r) => typeof r === "function") as (() => void) | undefined;
    callback?.();
    return true;
  }) as typeof stream.write;
}

let installed = false;
/** Installs the filter on stdout and stderr once per process. */
export function filterRuntimeOutput(): void {
  if (installed) return;
  installed = true;
  filter(process.stderr);
  filter(process.stdout);
}
