import { Code, ConnectError } from "@connectrpc/connect";
import { Hono } from "hono";
import { createConnectFetchHandler } from "../../core/connect/fetch-handler.js";
import { wireError } from "../../core/connect/wire-errors.js";
import { INTERNAL_ERROR_MESSAGE } from "../../core/errors/connect-codes.js";
import { createFunctionsRouter } from "./connect/router.js";
import type { FunctionsDeps } from "./deps.js";

/**
 * The management API's HTTP surface, the same on Node (server.ts) and Lambda
 * (lambda.ts): Connect procedures at `/<service>/<method>` (Connect, gRPC-web and plain
 * JSON over HTTP/1.1), `GET /healthz` (liveness) and `GET /readyz` (the database answers).
 */
export function createFunctionsApp(deps: FunctionsDeps, environment: string): Hono {
  const connect = createConnectFetchHandler(createFunctionsRouter(deps));
  const app = new Hono();

  app.get("/healthz", (c) =>
    c.json({ status: "healthy", service: "fulcrum-functions", environment }),
  );
  app.get("/readyz", async (c) => {
    const ready = await deps.isReady();
    return c.json(
      {
        status: ready ? "ready" : "unavailable",
        checks: { database: ready ? "ok" : "unreachable" },
      },
      ready ? 200 : 503,
    );
  });

  app.all("*", async (c) => {
    const response = await connect(c.req.raw);
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
