import { type RunningNodeService, startNodeService } from "./node-service.js";

export type RunningFunctions = RunningNodeService;

/**
 * Starts the management API (functions/src/server.ts) as its own process, as it runs
 * when deployed: configured by environment variables only. Waits for /readyz, so the
 * database is reachable when this resolves.
 */
export function startFunctionsServer(
  port: number,
  env: Record<string, string>,
  logFile?: NodeJS.WritableStream,
): Promise<RunningFunctions> {
  return startNodeService({
    name: "functions",
    script: "functions/src/server.ts",
    url: `http://127.0.0.1:${port}`,
    healthPath: "/readyz",
    env: { ...env, HOST: "127.0.0.1", PORT: String(port) },
    ...(logFile ? { logFile } : {}),
  });
}
