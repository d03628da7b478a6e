/**
 * The container's entry: parses the environment once, serves /healthz and /metrics,
 * runs the processor, and on SIGTERM/SIGINT finishes the batch in flight and exits 0.
 * A bad environment exits 78 (EX_CONFIG) with one log line naming the variable.
 */
import { createLogger } from "../../../core/logging/logger.js";
import { BadEnvironmentError, describeConfig, parseEventProcessorConfig } from "./config.js";
import { serveProcessorHttp } from "./http.js";
import { startEventProcessor } from "./processor.js";

const logger = createLogger("event-processor");

async function main(): Promise<void> {
  let config: ReturnType<typeof parseEventProcessorConfig>;
  try {
    config = parseEventProcessorConfig(process.env);
  } catch (error) {
    if (!(error instanceof BadEnvironmentError)) throw error;
    logger.error("bad environment", { code: "BAD_ENVIRONMENT", reason: error.message });
    process.exit(78);
  }
  logger.info("starting", describeConfig(config));

  // Signals are handled from the start, so a SIGTERM during startup is graceful too.
  let started: { stop(): Promise<void> } | undefined;
  let signalled = false;
  const shutdown = (signal: string) => {
    if (signalled) {
      logger.info("second signal: exiting now", { signal });
      process.exit(1);
    }
    signalled = true;
    logger.info("shutting down", { signal });
    // Still connecting: nothing has been pulled, so there is nothing to finish.
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

  const running = (async () => {
    const processor = await startEventProcessor(config, logger);
    let http: Awaited<ReturnType<typeof serveProcessorHttp>> | undefined;
    started = {
      async stop() {
        await processor.stop();
        await http?.close();
      },
    };
    http = await serveProcessorHttp(processor, config.http.host, config.http.port);
    logger.info("listening", { url: http.url });
    return started;
  })();
  await running;
}

main().catch((error: unknown) => {
  logger.error("event processor failed", { error });
  process.exit(1);
});
