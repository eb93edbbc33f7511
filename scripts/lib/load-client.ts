/**
 * The HTTP side of `npm run load`: one keep-alive client at a fixed concurrency, per-request
 * timing, and the figures (req/s, p50, p99). node:http only, so both phases (proxy and
 * sandbox) measure with the very same client.
 */
import { Agent, request } from "node:http";

/** What one request got, or the error that ended it. */
export interface Sent {
  status: number;
  /** Milliseconds from sending to the last byte of the answer. */
  ms: number;
  /** Wall-clock epoch ms when it was sent and answered (rate-limit windows are wall-clock). */
  startedAt: number;
  endedAt: number;
  body: string;
  requestId?: string;
  contentType?: string;
  error?: string;
}

export interface Outgoing {
  url: string;
  method: string;
  headers: Record<string, string>;
  body?: string;
}

/** Most bytes of an answer kept; the proxy's answers are far smaller. */
const MAX_KEPT = 64 * 1024;

function send(agent: Agent, out: Outgoing, timeoutMs: number): Promise<Sent> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const startedAt = Date.now();
    let settled = false;
    const done = (r: Omit<Sent, "ms" | "startedAt" | "endedAt">) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...r, ms: performance.now() - t0, startedAt, endedAt: Date.now() });
    };
    const req = request(out.url, { method: out.method, headers: out.headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        size += c.length;
        if (size <= MAX_KEPT) chunks.push(c);
      });
      res.on("end", () =>
        done({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString("utf8"),
          requestId: res.headers["x-request-id"] as string | undefined,
          contentType: res.headers["content-type"],
        }),
      );
      res.on("error", (err) => done({ status: 0, body: "", error: err.message }));
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    req.on("error", (err) => done({ status: 0, body: "", error: err.message }));
    req.end(out.body);
  });
}

/**
 * Sends every request with `concurrency` in flight (keep-alive, at most that many sockets).
 * Stops starting new ones at `deadline` (epoch ms); those get an error result. Returns the
 * results in plan order and the phase's wall-clock seconds.
 */
export async function runPhase(
  items: Outgoing[],
  concurrency: number,
  timeoutMs: number,
  deadline: number,
): Promise<{ results: Sent[]; seconds: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const results: Sent[] = new Array(items.length);
  let next = 0;
  const t0 = performance.now();
  async function worker() {
    while (next < items.length) {
      const i = next++;
      if (Date.now() > deadline) {
        const now = Date.now();
        results[i] = { status: 0, ms: 0, startedAt: now, endedAt: now, body: "", error: "deadline reached" };
        continue;
      }
      results[i] = await send(agent, items[i], timeoutMs);
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  } finally {
    agent.destroy();
  }
  return { results, seconds: (performance.now() - t0) / 1000 };
}

/** Nearest-rank percentile of ascending `sorted`. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1];
}

export interface Figures {
  requests: number;
  seconds: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  max_ms: number;
}

const round = (x: number, digits = 1) => Math.round(x * 10 ** digits) / 10 ** digits;

/** Throughput and latency of `latencies` (ms) over `seconds` of wall clock. */
export function figures(latencies: number[], seconds: number): Figures {
  const sorted = [...latencies].sort((a, b) => a - b);
  return {
    requests: sorted.length,
    seconds: round(seconds, 2),
    rps: round(sorted.length / seconds),
    p50_ms: round(percentile(sorted, 50)),
    p99_ms: round(percentile(sorted, 99)),
    max_ms: round(sorted.at(-1) ?? Number.NaN),
  };
}
