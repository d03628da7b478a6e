import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitForHttp } from "./ports.js";

export interface RunningWorker {
  url: string;
  stop(): Promise<void>;
}

/**
 * Environment that keeps wrangler fully offline: no telemetry, no request to
 * Cloudflare for `request.cf` data, no update check.
 */
export const OFFLINE_WRANGLER_ENV = {
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  WRANGLER_LOG: "warn",
  NO_UPDATE_NOTIFIER: "1",
} as const;

/**
 * Starts the edge Worker with `wrangler dev` on the given port and waits for
 * /healthz. Uses the wrangler of this project under the Node that runs us.
 */
export async function startWranglerDev(
  port: number,
  options: {
    vars?: Record<string, string>;
    /** A dotenv file of variables: for values too large for the command line. */
    envFile?: string;
    logFile?: NodeJS.WritableStream;
    /**
     * Where the Worker's local Durable Object storage (the audit buffer) lives. Default:
     * a fresh directory removed on stop. Two wrangler processes must never share one:
     * SQLite would answer "database is locked" and the audit buffer would refuse appends.
     */
    persistTo?: string;
  } = {},
): Promise<RunningWorker> {
  const ownState = options.persistTo === undefined;
  const persistTo = options.persistTo ?? mkdtempSync(join(tmpdir(), "fulcrum-wrangler-state-"));
  const args = [
    "node_modules/wrangler/bin/wrangler.js",
    "dev",
    "--local",
    "--ip",
    "127.0.0.1",
    "--port",
    String(port),
    "--inspector-port",
    "0",
    "--show-interactive-dev-session=false",
    "--persist-to",
    persistTo,
  ];
  if (options.envFile) args.push("--env-file", options.envFile);
  for (const [name, value] of Object.entries(options.vars ?? {})) {
    args.push("--var", `${name}:${value}`);
  }
  const child = spawn(process.execPath, args, {
    env: { ...process.env, ...OFFLINE_WRANGLER_ENV },
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

  const url = `http://127.0.0.1:${port}`;
  try {
    await Promise.race([
      waitForHttp(`${url}/healthz`, 60_000),
      exited(child).then((code) => {
        throw new Error(`wrangler dev exited with ${code}`);
      }),
    ]);
  } catch (error) {
    await stopProcessGroup(child);
    if (ownState) rmSync(persistTo, { recursive: true, force: true });
    throw new Error(`${(error as Error).message}\n--- wrangler output ---\n${output.join("")}`);
  }
  return {
    url,
    stop: async () => {
      await stopProcessGroup(child);
      if (ownState) rmSync(persistTo, { recursive: true, force: true });
    },
  };
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** wrangler starts workerd as a child: stop the whole process group. */
export async function stopProcessGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.pid === undefined) return;
  const done = exited(child);
  try {
    process.kill(-child.pid, "SIGTERM");
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    } catch {}
  }, 5000);
  await done;
  clearTimeout(timer);
}
