/**
 * The container's entry: parses the environment once, serves /healthz and /metrics,
 * runs the notifier, and on SIGTERM/SIGINT finishes the deliveries under way and exits 0.
 * A bad environment exits 78 (EX_CONFIG) with one log line naming the variable.
 * The plumbing is the workers' shared entry (workers/shared/run-worker.ts).
 */
import { createLogger } from "../../../core/logging/logger.js";
import { runWorker } from "../../shared/run-worker.js";
import { describeConfig, parseNotifierConfig } from "./config.js";
import { startNotifier } from "./notifier.js";

runWorker({
  name: "notifier",
  logger: createLogger("notifier"),
  parseConfig: parseNotifierConfig,
  describeConfig,
  http: (config) => config.http,
  start: startNotifier,
});
