/**
 * The container's entry: parses the environment once, serves /healthz and /metrics,
 * runs the processor, and on SIGTERM/SIGINT finishes the batch in flight and exits 0.
 * A bad environment exits 78 (EX_CONFIG) with one log line naming the variable.
 * The plumbing is the workers' shared entry (workers/shared/run-worker.ts).
 */
import { createLogger } from "../../../core/logging/logger.js";
import { runWorker } from "../../shared/run-worker.js";
import { describeConfig, parseEventProcessorConfig } from "./config.js";
import { startEventProcessor } from "./processor.js";

runWorker({
  name: "event processor",
  logger: createLogger("event-processor"),
  parseConfig: parseEventProcessorConfig,
  describeConfig,
  http: (config) => config.http,
  start: startEventProcessor,
});
