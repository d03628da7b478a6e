import { spawn } from "node:child_process";
import { join } from "node:path";
import { repoRoot } from "../services/service.js";
import { waitForHttp } from "./ports.js";
import { stopProcessGroup } from "./wrangler-dev.js";

export interface RunningNodeService {
  url: string;
  pid: number;
  /** SIGTERM to its process group (SIGKILL after 5 s). */
  stop(): Promise<void>;
}

/**
 * Starts one of the project's Node services (`script`, run with tsx) as its own
 * process, as it runs when deployed: configured by environment variables only. Resolves
 * once `healthPath` answers 200 on `url`; on failure the error carries its output.
 */
export async function startNodeService(options: {
  name: string;
  script: string;
  url: string;
  healthPath: string;
  env: Record<string, string>;
  logFile?: NodeJS.WritableStream;
}): Promise<RunningNodeService> {
  const tsx = join(repoRoot, "node_modules", "tsx", "dist", "cli.mjs");
  const child = spawn(process.execPath, [tsx, join(repoRoot, options.script)], {
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  const output: string[] = [];
  const collect = (chunk: Buffer) => {
    output.push(chunk.toString());
    if (output.length > 200) output.shift();
    options.logFile?.write(chunk);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  try {
    await Promise.race([
      waitForHttp(`${options.url}${options.healthPath}`, 60_000),
      new Promise((_, reject) =>
        child.once("exit", (code) => reject(new Error(`${options.name} exited with ${code}`))),
      ),
    ]);
  } catch (error) {
    await stopProcessGroup(child);
    throw new Error(
      `${(error as Error).message}\n--- ${options.name} output ---\n${output.join("")}`,
    );
  }
  return { url: options.url, pid: child.pid ?? 0, stop: () => stopProcessGroup(child) };
}
