/**
 * village-edge: a narrow, key-injecting door in front of Village's Patch User API.
 * Middleware and routes are assembled here (docs/architecture.md); each route lives in its concern's folder.
 */

import { Hono } from "hono";
import { methodNotAllowed } from "hono/method-not-allowed";
import { audit } from "./audit/routes.ts";
import { callerOf } from "./auth/authenticate.ts";
import { allowedOriginsOf } from "./config.ts";
import { accessLog } from "./http/access-log.ts";
import type { AppEnv } from "./http/context.ts";
import { cors, preflight } from "./http/cors.ts";
import { notFound, onError, ProblemError, problemResponse } from "./http/errors.ts";
import { requestId } from "./http/request-id.ts";
import { health } from "./meta/health.ts";
import { openapi } from "./meta/openapi.ts";
import { users } from "./users/route.ts";

export const app = new Hono<AppEnv>({ strict: true });

app.use(accessLog({ callerOf }));
app.use(requestId());
app.use("/users/*", cors({ allowedOrigins: allowedOriginsOf }));
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
app.options("/users/:email", preflight({ allowedOrigins: allowedOriginsOf }));
app.route("/audit", audit);
app.notFound(notFound);
app.onError(onError);

export default app satisfies ExportedHandler<Env>;
