/** `GET /healthz`: liveness only. Reads no binding, calls nothing upstream. */
import { Hono } from "hono";
import type { AppEnv } from "../http/context.ts";
import { respondJson } from "../http/respond.ts";

export const health = new Hono<AppEnv>();

health.get("/", (c) => respondJson(c, { status: "ok" }));
