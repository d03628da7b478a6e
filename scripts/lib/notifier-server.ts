import { type RunningNodeService, startNodeService } from "./node-service.js";

export type RunningNotifier = RunningNodeService;

/**
 * Starts the notifier (workers/notifier/src/main.ts) as its own process, as its container
 * runs it: configured by environment variables only. Resolves once /healthz answers 200
 * (NATS and PostgreSQL reachable, consumers in place). stop() sends SIGTERM: it finishes
 * the deliveries under way, then exits.
 */
export function startNotifierServer(
  port: number,
  env: Record<string, string>,
  logFile?: NodeJS.WritableStream,
): Promise<RunningNotifier> {
  return startNodeService({
    name: "notifier",
    script: "workers/notifier/src/main.ts",
    url: `http://127.0.0.1:${port}`,
    healthPath: "/healthz",
    env: { ...env, NOTIFIER_HOST: "127.0.0.1", NOTIFIER_PORT: String(port) },
    ...(logFile ? { logFile } : {}),
  });
}
