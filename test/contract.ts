/**
 * The contract check: every (operation, status, content type) the test suite observes must be
 * documented in src/meta/openapi.json. test/helpers.ts `send` records each answer of the Worker
 * ({@link observe}); test/setup.ts hands a file's observations to the reporter as one
 * `[contract] …` console line after its tests; test/summary-reporter.ts collects them and fails
 * the run with {@link undocumented}'s list. Pure functions: workerd tests use them too.
 */

/** One answer the Worker gave during the tests. */
export interface Observation {
  method: string;
  path: string;
  status: number;
  /** The media type without parameters, `""` when the answer has no body. */
  type: string;
}

/** The prefix of the console line that carries a file's observations. */
export const CONTRACT_LINE = "[contract] ";

const observed = new Map<string, Observation>();

/**
 * Records one answer of the Worker. Kept once per method, documented path template (or
 * concrete path when none matches), status and type: the first concrete path stays as the example.
 */
export function observe(doc: Json, request: Request, response: Response): void {
  const type = (response.headers.get("Content-Type") ?? "").split(";")[0].trim().toLowerCase();
  const path = new URL(request.url).pathname;
  const o = { method: request.method.toUpperCase(), path, status: response.status, type };
  const key = JSON.stringify([o.method, templateOf(doc, path) ?? path, o.status, o.type]);
  if (!observed.has(key)) observed.set(key, o);
}

/** This file's observations as one console line (empties the record). */
export function observationsLine(): string {
  const line = `${CONTRACT_LINE}${JSON.stringify([...observed.values()])}`;
  observed.clear();
  return line;
}

// biome-ignore lint/suspicious/noExplicitAny: walks a parsed JSON document
type Json = Record<string, any>;

const METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** The documented path whose template matches `path`, if any. */
function templateOf(doc: Json, path: string): string | undefined {
  return Object.keys(doc.paths).find((template) => {
    const re = template.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+");
    return new RegExp(`^${re}$`).test(path);
  });
}

/** The response object of `operation` for `status`, with a `$ref` resolved. */
function responseOf(doc: Json, operation: Json, status: number): Json | undefined {
  let r = operation.responses?.[String(status)] ?? operation.responses?.[`${String(status)[0]}XX`];
  if (r?.$ref) r = doc.components.responses[String(r.$ref).split("/").pop() ?? ""];
  return r;
}

/**
 * The observations the document does not cover, each as `(operation, status, type)` with the
 * request that produced it. A path the document does not list must answer 404 problem+json; an
 * answer to a method a documented path does not serve (405) must be listed on each of the path's
 * operations.
 */
export function undocumented(doc: Json, observations: Observation[]): string[] {
  const missing = new Set<string>();
  for (const o of observations) {
    const where = `${o.method} ${o.path}`;
    const template = templateOf(doc, o.path);
    if (!template) {
      if (o.status !== 404 || o.type !== "application/problem+json") {
        missing.add(`(no operation: ${where} is not a documented path, ${o.status}, ${o.type || "no body"})`);
      }
      continue;
    }
    const item = doc.paths[template];
    let method = o.method.toLowerCase();
    if (method === "head" && !item.head) method = "get"; // HEAD is answered as GET without a body
    const operation = item[method];
    if (!operation) {
      // Another method on a documented path: 405, which every operation of the path must list.
      for (const m of METHODS.filter((name) => item[name])) {
        const r = responseOf(doc, item[m], o.status);
        if (!r || (o.type && !Object.keys(r.content ?? {}).includes(o.type))) {
          missing.add(
            `(${item[m].operationId ?? `${m} ${template}`}, ${o.status}, ${o.type || "no body"}) from ${where}`,
          );
        }
      }
      continue;
    }
    const id = operation.operationId ?? `${method} ${template}`;
    const response = responseOf(doc, operation, o.status);
    const documented =
      response &&
      (o.type === "" || o.method === "HEAD" ? true : Object.keys(response.content ?? {}).includes(o.type));
    if (!documented) {
      missing.add(`(${id}, ${o.status}, ${o.type || "no body"}) from ${where}`);
    }
  }
  return [...missing].sort();
}
