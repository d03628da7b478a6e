/**
 * Everything a benchmark run starts (processes, temp dirs, servers), stopped in
 * reverse order however the run ends: normally, on an error, on a signal, and
 * (synchronously, as a last resort) when the process exits.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { waitForHttp } from "../../scripts/lib/ports.js";
import { stopProcessGroup } from "../../scripts/lib/wrangler-dev.js";
import { repoRoot } from "../../scripts/opa.js";

export class Resources {
  private readonly entries: { stop: () => Promise<void>; exitNow?: () => void }[] = [];

  add(stop: () => Promise<void>, exitNow?: () => void): void {
    this.entries.push({ stop, exitNow });
  }

  /** A private (0700) temp dir, removed at the end. */
  tempDir(prefix: string): string {
    const dir = mkdtempSync(join(tmpdir(), prefix));
    const remove = () => rmSync(dir, { recursive: true, force: true });
    this.add(async () => remove(), remove);
    return dir;
  }

  async stopAll(): Promise<void> {
    for (const entry of this.entries.splice(0).reverse()) {
      await entry.stop().catch((error: unknown) => {
        process.stderr.write(`cleanup: ${(error as Error).message ?? error}\n`);
      });
    }
  }

  exitNow(): void {
    for (const entry of this.entries.splice(0).reverse()) {
      try {
        entry.exitNow?.();
      } catch {}
    }
  }
}

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

/**
 * Runs `body` with a fresh Resources and stops everything it registered
 * afterwards, also on Ctrl-C / SIGTERM (exit 128+n) and on process exit.
 */
export async function withResources<T>(
  log: (line: string) => void,
  body: (resources: Resources) => Promise<T>,
): Promise<T> {
  const resources = new Resources();
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return log(`${signal}: still stopping…`);
    signalled = true;
    log(`\n${signal}: stopping everything this benchmark started…`);
    const code = 128 + (signal === "SIGINT" ? 2 : signal === "SIGHUP" ? 1 : 15);
    setTimeout(() => {
      resources.exitNow();
      process.exit(code);
    }, 20_000).unref();
    void resources.stopAll().finally(() => process.exit(code));
  };
  const onExit = () => resources.exitNow();
  for (const signal of SIGNALS) process.on(signal, onSignal);
  process.on("exit", onExit);
  try {
    return await body(resources);
  } finally {
    await resources.stopAll();
    for (const signal of SIGNALS) process.removeListener(signal, onSignal);
    process.removeListener("exit", onExit);
  }
}

/** The last `max` chunks a process wrote: enough for an error, bounded for a long run. */
export class OutputTail {
  private readonly chunks: string[] = [];
  constructor(private readonly max = 200) {}
  push(chunk: Buffer | string): void {
    this.chunks.push(chunk.toString());
    if (this.chunks.length > this.max) this.chunks.shift();
  }
  toString(): string {
    return this.chunks.join("");
  }
}

/**
 * Starts a server process in its own process group (stopped with the group);
 * resolves once `healthUrl` answers 200. Its output is drained continuously
 * (the edge logs every decision) and only the tail is kept.
 */
export async function startProcess(
  resources: Resources,
  command: string,
  args: string[],
  healthUrl: string,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ pid: number; output: OutputTail }> {
  const child: ChildProcess = spawn(command, args, {
    cwd: repoRoot,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  resources.add(
    () => stopProcessGroup(child),
    () => {
      if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
    },
  );
  const output = new OutputTail();
  child.stdout?.on("data", (d: Buffer) => output.push(d));
  child.stderr?.on("data", (d: Buffer) => output.push(d));
  try {
    await Promise.race([
      waitForHttp(healthUrl, 30_000),
      new Promise((_, fail) =>
        child.once("exit", (code) => fail(new Error(`${command} exited with ${code}`))),
      ),
    ]);
  } catch (error) {
    throw new Error(`${(error as Error).message}\n--- output ---\n${output}`);
  }
  return { pid: child.pid ?? Number.NaN, output };
}
