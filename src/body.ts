import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "./context.ts";
import { ProblemError } from "./errors.ts";

/** Largest request body read, in bytes; three 100-character names fit many times over. */
export const MAX_BODY_BYTES = 8 * 1024;

const JSON_MEDIA = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

async function readBounded(req: Request, max: number): Promise<Uint8Array> {
  const declared = req.headers.get("Content-Length");
  if (declared !== null && Number(declared) > max) throw tooLarge(max);
  if (!req.body) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > max) {
      await reader.cancel();
      throw tooLarge(max);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

const tooLarge = (max: number) =>
  new ProblemError("payload-too-large", `The body must be at most ${max} bytes.`);

/**
 * Requires an `application/json` body (415 otherwise), reads at most `maxBytes` of it
 * whether or not a length was declared (413), and parses it once (400 when malformed).
 * The checked text replaces the body for the validator that follows.
 */
export const jsonBody = (maxBytes = MAX_BODY_BYTES): MiddlewareHandler<AppEnv> =>
  async function jsonBody(c, next) {
    const type = c.req.header("Content-Type") ?? "";
    if (!JSON_MEDIA.test(type)) {
      throw new ProblemError("unsupported-media-type", "The body must be application/json.", {
        headers: { "Accept-Patch": "application/json" },
      });
    }
    const bytes = await readBounded(c.req.raw, maxBytes);
    let text: string;
    try {
      text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
    } catch {
      throw new ProblemError("malformed-json", "The body is not valid UTF-8.");
    }
    try {
      JSON.parse(text);
    } catch {
      throw new ProblemError("malformed-json", "The body is not valid JSON.");
    }
    c.req.raw = new Request(c.req.raw, { body: text });
    await next();
  };
