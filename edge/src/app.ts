import { Code, ConnectError, cors as connectCors, createContextValues } from "@connectrpc/connect";
import { Hono } from "hono";
import { cors } from "hono/cors";
import { createConnectFetchHandler } from "../../core/connect/fetch-handler.js";
import { wireError } from "../../core/connect/wire-errors.js";
import { INTERNAL_ERROR_MESSAGE } from "../../core/errors/connect-codes.js";
import { PROMETHEUS_CONTENT_TYPE } from "../../core/observability/metrics.js";
import { waitUntilKey } from "./auth/edge-context.js";
import type { EdgeConfig } from "./config.js";
import { createEdgeRouter } from "./connect/router.js";
import type { EdgeDeps } from "./deps.js";

/**
 * The edge Worker's HTTP surface, built once per isolate: Connect procedures at
 * `/<service>/<method>` (CORS open to the configured origins, for the browser SDK),
 * `GET /healthz` (liveness), `GET /readyz` (Redis reachable) and `GET /metrics`
 * (this isolate's counters and the audit buffers' gauges, Prometheus text).
 */
export function createEdgeApp(config: EdgeConfig, deps: EdgeDeps): Hono {
  const connect = createConnectFetchHandler(createEdgeRouter(deps));
  const app = new Hono();

  app.use(
    "*",
    cors({
      origin: config.corsAllowedOrigins === "*" ? "*" : [...config.corsAllowedOrigins],
      allowMethods: [...connectCors.allowedMethods],
      allowHeaders: [...connectCors.allowedHeaders, "x-api-key", "authorization"],
      exposeHeaders: [...connectCors.exposedHeaders],
      maxAge: 7200,
    }),
  );

  app.get("/healthz", (c) =>
    c.json({ status: "healthy", service: "fulcrum-edge", environment: config.environment }),
  );

  app.get("/readyz", async (c) => {
    const ready = await deps.isReady();
    return c.json(
      { status: ready ? "ready" : "not_ready", checks: { redis: ready ? "ok" : "unreachable" } },
      ready ? 200 : 503,
    );
  });

  app.get("/metrics", async (c) => {
    await deps.collectMetrics();
    return c.body(deps.metrics.render(), 200, { "content-type": PROMETHEUS_CONTENT_TYPE });
  });

  app.all("*", async (c) => {
    const values = createContextValues();
    const ctx = executionContextOf(c);
    if (ctx) values.set(waitUntilKey, (work) => ctx.waitUntil(work));
    const response = await connect(c.req.raw, values);
    if (response) return response;
    return c.json(
      { code: "not_found", message: `no route for ${c.req.method} ${c.req.path}` },
      404,
    );
  });

  app.onError((error, c) => {
    deps.logger.error("unhandled error", { path: c.req.path, error });
    return wireError("connect", new ConnectError(INTERNAL_ERROR_MESSAGE, Code.Internal));
  });

  return app;
}

/** Hono throws when a request came without an ExecutionContext (tests calling app.fetch). */
function executionContextOf(c: {
  executionCtx: { waitUntil(work: Promise<unknown>): void };
}): { waitUntil(work: Promise<unknown>): void } | undefined {
  try {
    return c.executionCtx;
  } catch {
    return undefined;
  }
}
