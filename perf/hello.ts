/**
 * A bare Hono hello-world Worker: what `npm run bench` compares this Worker's startup with
 * (perf/startup.ts). Built like the Worker, never deployed.
 */
import { Hono } from "hono";

const app = new Hono();
app.get("/", (c) => c.text("Hello Hono!"));

export default app;
