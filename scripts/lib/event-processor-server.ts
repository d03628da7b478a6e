import { type RunningNodeService, startNodeService } from "./node-service.js";

export type RunningEventProcessor = RunningNodeService;

/**
 * Starts the event processor (workers/event-processor/src/main.ts) as its own process,
 * as its container runs it: configured by environment variables only. Resolves once
 * /healthz answers 200 (NATS, ClickHouse and PostgreSQL reachable, consumer in place).
 * stop() sends SIGTERM: it finishes the batch in flight, then exits.
 */
export function startEventProcessorServer(
  port: number,
  env: Record<string, string>,
  logFile?: NodeJS.WritableStream,
): Promise<RunningEventProcessor> {
  return startNodeService({
    name: "event processor",
    script: "workers/event-processor/src/main.ts",
    url: `http://127.0.0.1:${port}`,
    healthPath: "/healthz",
    env: { ...env, EVENT_PROCESSOR_HOST: "127.0.0.1", EVENT_PROCESSOR_PORT: String(port) },
    ...(logFile ? { logFile } : {}),
  });
}
