import { spawn } from "node:child_process";
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, join } from "node:path";

/** Progress lines go to stderr so a CLI's stdout (the summary table) stays clean. */
export type Log = (line: string) => void;
export const stderrLog: Log = (line) => process.stderr.write(`[services] ${line}\n`);

export const isRoot = (): boolean => process.getuid?.() === 0;

/**
 * Finds an executable on PATH and in the sbin folders: Debian puts nats-server in
 * /usr/sbin, which is not on a normal user's PATH.
 */
export function which(name: string): string | undefined {
  const dirs = [
    ...(process.env.PATH ?? "").split(delimiter),
    "/usr/local/sbin",
    "/usr/sbin",
    "/sbin",
  ];
  for (const dir of dirs) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  return undefined;
}

export interface RunResult {
  code: number | null;
  output: string;
}

/**
 * Runs a command to its exit. Resolves on "exit", not "close": a daemon it forks
 * (pg_ctl, redis-server --daemonize) may inherit the pipes and keep them open for ever.
 */
export function run(
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; onLine?: Log } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: options.env ?? process.env,
      ...(options.cwd ? { cwd: options.cwd } : {}),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const collect = (chunk: Buffer) => {
      output += chunk.toString();
      if (options.onLine) {
        for (const line of chunk.toString().split("\n")) if (line.trim()) options.onLine(line);
      }
    };
    child.stdout.on("data", collect);
    child.stderr.on("data", collect);
    child.on("error", reject);
    child.on("exit", (code) => {
      child.stdout.destroy();
      child.stderr.destroy();
      resolve({ code, output });
    });
  });
}

/** Like `run`, but a non-zero exit becomes an error that carries the output. */
export async function runOrThrow(command: string, args: string[], what: string): Promise<string> {
  const result = await run(command, args);
  if (result.code !== 0) {
    throw new Error(`${what} failed (exit ${result.code}):\n${result.output.trim()}`);
  }
  return result.output;
}

/** Last lines of a log file, for error messages. */
export function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return `(no log at ${file})`;
  return readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `check` until it returns true; false at the deadline. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await sleep(100);
  }
  return check();
}

/** True when nothing listens on 127.0.0.1:port (binding succeeds). */
export function isPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: alive but someone else's process.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export function readPid(file: string): number | undefined {
  if (!existsSync(file)) return undefined;
  const pid = Number.parseInt(readFileSync(file, "utf8").trim(), 10);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
export async function terminate(pid: number, graceMs = 10_000): Promise<void> {
  if (!pidAlive(pid)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  if (await waitFor(async () => !pidAlive(pid), graceMs)) return;
  try {
    process.kill(pid, "SIGKILL");
  } catch {}
  await waitFor(async () => !pidAlive(pid), 5000);
}
