import type { Context } from "hono";
import type * as z from "zod/mini";
import { readAtMost } from "./bounded-read.ts";
import type { AppEnv } from "./context.ts";
import { type FieldError, ProblemError } from "./errors.ts";
import { logEvent } from "./log.ts";

declare module "hono" {
  interface ContextVariableMap {
    /**
     * The body as {@link readJsonBody} parsed it, before validation: what later readers (the
     * audit trail's refusal record) read, since the stream is consumed. Ours, not Hono's
     * internal body cache.
     */
    parsedBody?: unknown;
  }
}

/** Strict UTF-8: a malformed byte is an error, not U+FFFD. Reusable: each decode() starts afresh. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
const JSON_MEDIA = /^application\/json\s*(;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

const tooLarge = (max: number) =>
  new ProblemError("payload-too-large", `The body must be at most ${max} bytes.`);

/**
 * The client hung up (or the stream broke) while its body was read: logged at info as a client
 * abort, answered (to no one, usually) with a 400, never audited and never forwarded.
 */
function clientAborted(c: Context<AppEnv>, err: unknown): ProblemError {
  logEvent("info", "client_aborted", c, { detail: err instanceof Error ? err.message : String(err) });
  return new ProblemError("invalid-request", "The request body could not be read to its end.", {
    reason: "client_aborted",
    skipAudit: true,
  });
}

/**
 * Reads at most `max` bytes of the body. A declared length is checked first and, when it fits,
 * the body is read in one call (the HTTP layer delivers exactly the declared length; the size
 * is checked again anyway). Without one, the stream is read chunk by chunk and cancelled as
 * soon as it passes `max`.
 */
async function readBounded(req: Request, max: number): Promise<Uint8Array> {
  const header = req.headers.get("Content-Length");
  const declared = header !== null && /^\d{1,15}$/.test(header) ? Number(header) : undefined;
  if (declared !== undefined && declared > max) throw tooLarge(max);
  if (!req.body) return new Uint8Array(0);
  if (declared !== undefined) {
    const bytes = new Uint8Array(await req.arrayBuffer());
    if (bytes.byteLength > max) throw tooLarge(max);
    return bytes;
  }
  const bytes = await readAtMost(req.body, max);
  if (bytes === undefined) throw tooLarge(max);
  return bytes;
}

/**
 * Requires an `application/json` body (415 otherwise), reads at most `maxBytes` of it whether
 * or not a length was declared (413), parses it once (400 `malformed-json`) and validates it
 * with `schema` (400 `validation-failed` with `errors[]` from `fieldErrors`, and `detail` as
 * given). Returns the schema's output; the parsed body stays in `parsedBody`.
 */
export async function readJsonBody<S extends z.ZodMiniType>(
  c: Context<AppEnv>,
  schema: S,
  {
    detail,
    maxBytes,
    fieldErrors,
  }: { detail: string; maxBytes: number; fieldErrors: (issues: readonly z.core.$ZodIssue[]) => FieldError[] },
): Promise<z.output<S>> {
  const type = c.req.header("Content-Type") ?? "";
  if (!JSON_MEDIA.test(type)) {
    throw new ProblemError("unsupported-media-type", "The body must be application/json.", {
      headers: { "Accept-Patch": "application/json" },
    });
  }
  let bytes: Uint8Array;
  try {
    bytes = await readBounded(c.req.raw, maxBytes);
  } catch (err) {
    throw err instanceof ProblemError ? err : clientAborted(c, err);
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new ProblemError("malformed-json", "The body is not valid UTF-8.");
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ProblemError("malformed-json", "The body is not valid JSON.");
  }
  c.set("parsedBody", value);
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new ProblemError("validation-failed", detail, { errors: fieldErrors(result.error.issues) });
  }
  return result.data;
}
