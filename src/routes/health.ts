/** `GET /healthz`: liveness only. Reads no binding, calls nothing upstream. */
import { Hono } from "hono";
import type { AppEnv } from "../context.ts";
import { respondJson } from "../respond.ts";

export const health = new Hono<AppEnv>();

health.get("/", (c) => respondJson(c, { status: "ok" }));
