/**
 * village-edge: a narrow, key-injecting door in front of Village's Patch User API.
 * Middleware and routes are assembled here, and only here (docs/architecture.md); each route
 * lives in its concern's folder. The Worker exports the app as `fetch` and the audit digests
 * (src/audit/digest.ts) as `scheduled`.
 */

import { Hono } from "hono";
import { methodNotAllowed } from "hono/method-not-allowed";
import { audit } from "./audit/routes.ts";
import { scheduledDigests } from "./audit/scheduled.ts";
import { callerOf, provideJwks } from "./auth/authenticate.ts";
import { createJwksProvider, type JwksProvider } from "./auth/jwks.ts";
import { allowedOriginsOf } from "./config.ts";
import { accessLog } from "./http/access-log.ts";
import type { AppEnv } from "./http/context.ts";
import { cors, preflight } from "./http/cors.ts";
import { notFound, onError, ProblemError, problemResponse } from "./http/errors.ts";
import { requestId } from "./http/request-id.ts";
import { standardHeaders } from "./http/respond.ts";
import { docs } from "./meta/docs.ts";
import { health } from "./meta/health.ts";
import { openapi } from "./meta/openapi.ts";
import { tokens } from "./tokens/routes.ts";
import { users } from "./users/route.ts";

/** What an app is built with; the Worker uses the defaults. */
export interface AppOptions {
  /** The JWKS cache: one per app, so a test's fresh app starts with an empty one. */
  jwks?: JwksProvider;
}

/**
 * Puts the middleware every route runs behind, the 404 and the error handler on `app`. Routes
 * added afterwards get all of it; a test mounts its own route on this to prove the guarantees.
 */
export function withMiddleware(app: Hono<AppEnv>, { jwks = createJwksProvider() }: AppOptions = {}) {
  app.use(accessLog({ callerOf }));
  app.use(requestId());
  app.use(standardHeaders());
  app.use(provideJwks(jwks));
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
  app.notFound(notFound);
  app.onError(onError);
  return app;
}

/** The whole service: the middleware, then every route. */
export function createApp(options: AppOptions = {}): Hono<AppEnv> {
  const app = withMiddleware(new Hono<AppEnv>({ strict: true }), options);
  app.route("/healthz", health);
  app.route("/openapi.json", openapi);
  app.route("/docs", docs);
  app.route("/users", users);
  app.options("/users/:email", preflight({ allowedOrigins: allowedOriginsOf }));
  app.route("/audit", audit);
  app.route("/tokens", tokens);
  return app;
}

export const app = createApp();

export default {
  fetch: app.fetch,
  async scheduled(controller, env) {
    await scheduledDigests(env, controller.scheduledTime);
  },
} satisfies ExportedHandler<Env>;
