/**
 * Node entry: serves the management API on HOST:PORT (default 127.0.0.1:8080), as the
 * local stack runs it. Configuration comes from the environment (config.ts); a bad
 * environment stops the process with BAD_ENVIRONMENT and the variable's name.
 */
import { serve } from "@hono/node-server";
import { createFunctionsApp } from "./app.js";
import { startReconcileLoop } from "./budgets/reconcile.js";
import { BadEnvironmentError, describeConfig, parseFunctionsConfig } from "./config.js";
import { createFunctionsDeps } from "./deps.js";

function main(): void {
  let config: ReturnType<typeof parseFunctionsConfig>;
  try {
    config = parseFunctionsConfig(process.env);
  } catch (error) {
    if (!(error instanceof BadEnvironmentError)) throw error;
    console.error(
      JSON.stringify({ level: "error", message: "BAD_ENVIRONMENT", reason: error.message }),
    );
    process.exit(2);
  }
  const host = process.env.HOST ?? "127.0.0.1";
  const port = Number(process.env.PORT ?? 8080);
  const deps = createFunctionsDeps(config);
  const app = createFunctionsApp(deps, config.environment);
  const server = serve({ fetch: app.fetch, hostname: host, port }, (info) => {
    deps.logger.info("listening", {
      url: `http://${host}:${info.port}`,
      ...describeConfig(config),
    });
  });
  // Budget reconciliation at start and every 60 s (budgets/reconcile.ts); deployed, an
  // SST cron runs it instead (the management Lambda only runs while answering calls).
  const stopReconcile = startReconcileLoop(deps);
  const stop = () => {
    stopReconcile();
    server.close();
    void deps.close().finally(() => process.exit(0));
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main();
