/**
 * A worker container's entry: parses the environment once, starts the worker, serves
 * /healthz and /metrics, and on SIGTERM/SIGINT stops the worker (which finishes the
 * work in flight) and exits 0; a second signal exits 1 at once. A bad environment exits
 * 78 (EX_CONFIG) with one log line naming the variable.
 */
import type { Logger } from "../../core/logging/logger.js";
import type { Metrics } from "../../core/observability/metrics.js";
import { BadEnvironmentError } from "./env.js";
import { type HealthSource, serveHealthHttp } from "./health-http.js";

/** What a worker's start function answers: the contract runWorker and the tests rely on. */
export interface WorkerHandle<Health extends { status: "healthy" | "unhealthy" }> {
  /** Resolves once the worker's consumers exist and messages are being pulled. */
  ready: Promise<void>;
  metrics: Metrics;
  health(): Promise<Health>;
  /** Stops pulling, finishes the work in flight, closes every connection. */
  stop(): Promise<void>;
}

type AnyWorker = HealthSource & { stop(): Promise<void> };

export interface WorkerEntry<Config, Worker extends AnyWorker> {
  /** For the last log line when the worker fails ("notifier failed"). */
  name: string;
  logger: Logger;
  /** @throws BadEnvironmentError naming the variable at fault. */
  parseConfig(env: NodeJS.ProcessEnv): Config;
  /** What may be logged about the configuration (no credentials). */
  describeConfig(config: Config): Record<string, unknown>;
  http(config: Config): { host: string; port: number };
  start(config: Config, logger: Logger): Promise<Worker>;
}

export function runWorker<Config, Worker extends AnyWorker>(
  entry: WorkerEntry<Config, Worker>,
): void {
  const { logger } = entry;
  main(entry).catch((error: unknown) => {
    logger.error(`${entry.name} failed`, { error });
    process.exit(1);
  });
}

async function main<Config, Worker extends AnyWorker>(
  entry: WorkerEntry<Config, Worker>,
): Promise<void> {
  const { logger } = entry;
  let config: Config;
  try {
    config = entry.parseConfig(process.env);
  } catch (error) {
    if (!(error instanceof BadEnvironmentError)) throw error;
    logger.error("bad environment", { code: "BAD_ENVIRONMENT", reason: error.message });
    process.exit(78);
  }
  logger.info("starting", entry.describeConfig(config));

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

  const worker = await entry.start(config, logger);
  let http: Awaited<ReturnType<typeof serveHealthHttp>> | undefined;
  // Set before the server listens: a signal from here on stops the worker, then the server.
  started = {
    async stop() {
      await worker.stop();
      await http?.close();
    },
  };
  const { host, port } = entry.http(config);
  http = await serveHealthHttp(worker, host, port);
  logger.info("listening", { url: http.url });
}
