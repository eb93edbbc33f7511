/**
 * The startup floor: a bare Hono Worker (as perf/hello.ts) that also loads what every change
 * needs at its first request, whichever way it is written: zod/mini and the two schemas a
 * change is checked with (the body's, src/users/changes.ts, with the phone rules; the token
 * record's, src/auth/tokens.ts). Loaded, not built: the Worker builds them on first use too.
 * The startup counterpart of the request floor in perf/worker.ts; built like the Worker by
 * perf/startup.ts, never deployed.
 */
import { Hono } from "hono";
import { tokenRecordSchema } from "../src/auth/tokens.ts";
import { changeSchema } from "../src/users/changes.ts";

const app = new Hono();
app.get("/", (c) => c.text("Hello Hono!"));

/** Exported so that the bundler keeps the modules; never called here. */
export const required = [changeSchema, tokenRecordSchema];

export default app;
