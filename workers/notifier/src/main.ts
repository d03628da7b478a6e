/**
 * The container's entry: parses the environment once, serves /healthz and /metrics,
 * runs the notifier, and on SIGTERM/SIGINT finishes the deliveries under way and exits 0.
 * A bad environment exits 78 (EX_CONFIG) with one log line naming the variable.
 */
import { createLogger } from "../../../core/logging/logger.js";
import { BadEnvironmentError, describeConfig, parseNotifierConfig } from "./config.js";
import { serveNotifierHttp } from "./http.js";
import { startNotifier } from "./notifier.js";

const logger = createLogger("notifier");

async function main(): Promise<void> {
  let config: ReturnType<typeof parseNotifierConfig>;
  try {
    config = parseNotifierConfig(process.env);
  } catch (error) {
    if (!(error instanceof BadEnvironmentError)) throw error;
    logger.error("bad environment", { code: "BAD_ENVIRONMENT", reason: error.message });
    process.exit(78);
  }
  logger.info("starting", describeConfig(config));

  let started: { stop(): Promise<void> } | undefined;
  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) {
      logger.info("second signal: exiting now", { signal });
      process.exit(1);
    }
    signalled = true;
    logger.info("shutting down", { signal });
    if (!started) process.exit(0);
    void (async () => {
      await started?.stop();
      process.exit(0);
    })().catch((error: unknown) => {
      logger.error("shutdown failed", { error });
      process.exit(1);
    });
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));

  const notifier = await startNotifier(config, logger);
  let http: Awaited<ReturnType<typeof serveNotifierHttp>> | undefined;
  started = {
    async stop() {
      await notifier.stop();
      await http?.close();
    },
  };
  http = await serveNotifierHttp(notifier, config.http.host, config.http.port);
  logger.info("listening", { url: http.url });
}

main().catch((error: unknown) => {
  logger.error("notifier failed", { error });
  process.exit(1);
});
