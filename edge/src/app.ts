import { Code, ConnectError } from "@connectrpc/connect";
import { Hono } from "hono";
import { createConnectFetchHandler } from "../../core/connect/fetch-handler.js";
import { wireError } from "../../core/connect/wire-errors.js";
import { INTERNAL_ERROR_MESSAGE } from "../../core/errors/connect-codes.js";
import { createLogger } from "../../core/logging/logger.js";
import type { EdgeConfig } from "./config.js";
import { createEdgeRouter } from "./connect/router.js";
import { PolicyEngine } from "./policy/policy-engine.js";
import { StaticTenantConfigSource } from "./policy/tenant-config-source.js";

export interface EdgeAppOptions {
  config: EdgeConfig;
  /** The compiled governance bundle (policies/build/governance.wasm). */
  policyModule: WebAssembly.Module;
  /** sha256 of the bundle, reported by /healthz so operators can tell versions apart. */
  policyBundleSha256: string;
}

/**
 * The edge Worker's HTTP surface: Connect procedures at `/<service>/<method>`
 * and `GET /healthz`. Built once per isolate.
 */
export function createEdgeApp(options: EdgeAppOptions): Hono {
  const logger = createLogger("fulcrum-edge");
  const engine = new PolicyEngine(options.policyModule);
  const tenants = new StaticTenantConfigSource(options.config.tenantConfigs);
  const connect = createConnectFetchHandler(createEdgeRouter({ engine, tenants }, logger));

  const app = new Hono();

  app.get("/healthz", (c) =>
    c.json({
      status: "healthy",
      service: "fulcrum-edge",
      environment: options.config.environment,
      policy_bundle_sha256: options.policyBundleSha256,
      tenant_configs: {
        origin: options.config.tenantConfigOrigin,
        tenants: Object.keys(options.config.tenantConfigs).length,
      },
    }),
  );

  app.all("*", async (c) => {
    const response = await connect(c.req.raw);
    if (response) return response;
    return c.json(
      { code: "not_found", message: `no route for ${c.req.method} ${c.req.path}` },
      404,
    );
  });

  app.onError((error, c) => {
    logger.error("unhandled error", { path: c.req.path, error });
    return wireError("connect", new ConnectError(INTERNAL_ERROR_MESSAGE, Code.Internal));
  });

  return app;
}
