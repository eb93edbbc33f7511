import type { Context } from "hono";

export type LogLevel = "info" | "warn" | "error";

/**
 * Writes one structured JSON log line. Callers pass only safe fields: never a
 * token, never the Village key, never raw field values.
 */
export function logEvent(
  level: LogLevel,
  event: string,
  c: Context | undefined,
  fields: Record<string, unknown> = {},
): void {
  const line = JSON.stringify({
    level,
    event,
    request_id: c?.get("requestId"),
    ...fields,
  });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
