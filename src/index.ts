/**
 * village-edge: a narrow, key-injecting door in front of Village's Patch User API.
 * Routes are assembled here; each lives in src/routes/.
 */

import { Hono } from "hono";
import { methodNotAllowed } from "hono/method-not-allowed";
import { accessLog } from "./access-log.ts";
import type { AppEnv } from "./context.ts";
import { cors, preflight } from "./cors.ts";
import { notFound, onError, ProblemError, problemResponse } from "./errors.ts";
import { requestId } from "./request-id.ts";
import { audit } from "./routes/audit.ts";
import { health } from "./routes/health.ts";
import { openapi } from "./routes/openapi.ts";
import { users } from "./routes/users.ts";

export const app = new Hono<AppEnv>({ strict: true });

app.use(accessLog());
app.use(requestId());
app.use("/users/*", cors());
app.use(
  methodNotAllowed({
    app,
    onMethodNotAllowed: (c, methods) =>
      problemResponse(
        c,
        new ProblemError("method-not-allowed", `This path accepts ${methods.join(", ")}.`, {
          headers: { Allow: methods.join(", ") },
        }),
      ),
  }),
);
app.route("/healthz", health);
app.route("/openapi.json", openapi);
app.route("/users", users);
app.options("/users/:email", preflight());
app.route("/audit", audit);
app.notFound(notFound);
app.onError(onError);

export default app satisfies ExportedHandler<Env>;
