import { spawn } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "../services/service.js";
import { waitForHttp } from "./ports.js";
import { stopProcessGroup } from "./wrangler-dev.js";

export interface RunningFunctions {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts the management API (functions/src/server.ts) as its own process, as it runs
 * when deployed: configured by environment variables only. Waits for /readyz, so the
 * database is reachable when this resolves.
 */
export async function startFunctionsServer(
  port: number,
  env: Record<string, string>,
  logFile?: NodeJS.WritableStream,
): Promise<RunningFunctions> {
  const tsx = join(repoRoot, "node_modules", "tsx", "dist", "cli.mjs");
  const child = spawn(process.execPath, [tsx, join(repoRoot, "functions/src/server.ts")], {
    env: { ...process.env, ...env, HOST: "127.0.0.1", PORT: String(port) },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 200) output.shift();
    logFile?.write(chunk);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const url = `http://127.0.0.1:${port}`;
  try {
    await Promise.race([
      waitForHttp(`${url}/readyz`, 60_000),
      new Promise((_, reject) =>
        child.once("exit", (code) => reject(new Error(`functions exited with ${code}`))),
      ),
    ]);
  } catch (error) {
    await stopProcessGroup(child);
    throw new Error(`${(error as Error).message}\n--- functions output ---\n${output.join("")}`);
  }
  return { url, stop: () => stopProcessGroup(child) };
}
