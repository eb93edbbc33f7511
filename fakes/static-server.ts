/**
 * A tiny static server for the example pages: serves the regular files directly inside one
 * folder (read once at start; no directory walking, no path from the request reaches the file
 * system) on 127.0.0.1. Used by the profile-page demo and browser tests.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join } from "node:path";
import { closeServer } from "../scripts/lib/cli.ts";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

export interface StaticServer {
  /** Origin of the server, e.g. `http://127.0.0.1:41234`. */
  origin: string;
  close(): Promise<void>;
}

/** Serves `dir`'s files (`/` is `index.html`) on 127.0.0.1 (port 0 = random). */
export async function serveStatic(dir: string, port = 0): Promise<StaticServer> {
  const files = new Map<string, { type: string; body: Buffer }>();
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const type = TYPES[extname(entry.name)];
    if (entry.isFile() && type)
      files.set(`/${entry.name}`, { type, body: readFileSync(join(dir, entry.name)) });
  }
  const server = createServer((req, res) => {
    req.resume();
    const path = (req.url ?? "/").split(/[?#]/)[0];
    const file = files.get(path === "/" ? "/index.html" : path);
    if ((req.method !== "GET" && req.method !== "HEAD") || !file) {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
      return;
    }
    res.writeHead(200, {
      "content-type": file.type,
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      // The page may talk to any http(s) origin (the Worker's URL is configurable), run only its own script.
      "content-security-policy":
        "default-src 'self'; connect-src http: https:; base-uri 'none'; form-action 'none'",
    });
    res.end(req.method === "HEAD" ? undefined : file.body);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve());
  });
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => closeServer(server),
  };
}
