/** `GET /healthz`: liveness only. Reads no binding, calls nothing upstream. */
import { Hono } from "hono";
import type { AppEnv } from "../context.ts";
import { finalize } from "../errors.ts";

export const health = new Hono<AppEnv>();

health.get("/", (c) => finalize(c, c.json({ status: "ok" })));
