/**
 * ClickHouse for local runs and tests: the server at CLICKHOUSE_URL (default
 * http://127.0.0.1:8123) when it answers, otherwise the project's chdb HTTP server
 * (scripts/lib/chdb-http-server.ts) started as a detached process of its own, so it
 * outlives `npm run clickhouse` the way the other services do and a test can pause it.
 *
 * `npm run clickhouse` ensures one and prints where it is; if it started one, it keeps
 * it in the foreground until Ctrl-C.
 */
import { spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { mkdir, rm, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { closeOnSignal, runIfMain } from "../lib/cli.js";
import { ensureChdbInstalled } from "./chdb-install.js";
import { isPortFree, type Log, readPid, stderrLog, tail, terminate, waitFor } from "./process.js";
import { repoRoot } from "./service.js";

export interface EnsuredClickHouse {
  url: string;
  startedByUs: boolean;
  /** What the probe saw, e.g. "ClickHouse 26.7.2.1". */
  detail: string;
  /** Data, log and pid of a project-owned server; absent when reused. */
  dir?: string;
  /** Stops what we started (and deletes `dir` if asked); a no-op for a reused server. */
  stop(): Promise<void>;
  /** Stops our server keeping its data: "ClickHouse unreachable" in fault tests. */
  pause(): Promise<void>;
  /** Starts it again on the same port and data. */
  resume(): Promise<void>;
}

export interface EnsureClickHouseOptions {
  url?: string;
  /** Probe and, if need be, start on 127.0.0.1:<port>. */
  port?: number;
  /** Default `.tmp/services/clickhouse`. */
  dir?: string;
  removeDirOnStop?: boolean;
  log?: Log;
}

/** `GET /ping`, then `SELECT version()`: a port that says "Ok." may still not be ClickHouse. */
export async function probeClickHouse(url: string): Promise<{ healthy: boolean; detail: string }> {
  try {
    const ping = await fetch(new URL("/ping", url), { signal: AbortSignal.timeout(2000) });
    if (!ping.ok) return { healthy: false, detail: `/ping answered ${ping.status}` };
    const version = await fetch(new URL("/?query=SELECT%20version()", url), {
      signal: AbortSignal.timeout(5000),
    });
    const text = (await version.text()).trim();
    if (!version.ok) return { healthy: false, detail: text.slice(0, 200) };
    return { healthy: true, detail: `ClickHouse ${text}` };
  } catch (error) {
    return { healthy: false, detail: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * @example
 * const clickhouse = await ensureClickHouse();
 * // ... createClickHouse({ url: clickhouse.url, database: "fulcrum" }) ...
 * await clickhouse.stop(); // no-op when clickhouse.startedByUs is false
 */
export async function ensureClickHouse(
  options: EnsureClickHouseOptions = {},
): Promise<EnsuredClickHouse> {
  const log = options.log ?? stderrLog;
  const url = new URL(options.url ?? process.env.CLICKHOUSE_URL ?? "http://127.0.0.1:8123");
  if (options.port !== undefined) {
    url.hostname = "127.0.0.1";
    url.port = String(options.port);
  }
  const base = url.origin;
  const first = await probeClickHouse(base);
  if (first.healthy) {
    const noop = async () => {};
    return {
      url: base,
      startedByUs: false,
      detail: first.detail,
      stop: noop,
      pause: noop,
      resume: noop,
    };
  }
  if (!["127.0.0.1", "localhost"].includes(url.hostname)) {
    throw new Error(`Nothing usable answers at ${base} (${first.detail}). Check CLICKHOUSE_URL.`);
  }
  const port = Number(url.port || 8123);
  if (!(await isPortFree(port))) {
    throw new Error(
      `127.0.0.1:${port} is taken by something that is not ClickHouse (${first.detail}).`,
    );
  }

  const dir = resolve(options.dir ?? join(repoRoot, ".tmp", "services", "clickhouse"));
  const logFile = join(dir, "clickhouse.log");
  const pidFile = join(dir, "clickhouse.pid");
  await mkdir(join(dir, "data"), { recursive: true });

  const start = async () => {
    // Installed here rather than by the server process: the first install (~550 MB)
    // must not eat into the wait for the server to answer.
    ensureChdbInstalled(log);
    log(`starting the chdb ClickHouse server on 127.0.0.1:${port} (data in ${dir})`);
    const logFd = openSync(logFile, "a");
    const tsx = join(repoRoot, "node_modules", "tsx", "dist", "cli.mjs");
    const server = join(repoRoot, "scripts", "lib", "chdb-http-server.ts");
    const child = spawn(
      process.execPath,
      [tsx, server, "--port", String(port), "--data", join(dir, "data")],
      // Detached: it must outlive a CLI that started it; stop() finds it again by pid.
      { detached: true, stdio: ["ignore", logFd, logFd] },
    );
    closeSync(logFd);
    let exited = false;
    child.once("exit", () => {
      exited = true;
    });
    child.unref();
    await writeFile(pidFile, String(child.pid));
    let last = first;
    // The first start loads a 566 MB library: allow it 30 s.
    const healthy = await waitFor(async () => {
      last = await probeClickHouse(base);
      return last.healthy || exited;
    }, 30_000);
    if (!healthy || !last.healthy) {
      await halt();
      throw new Error(
        `chdb ClickHouse on ${base} did not become healthy (${last.detail}).\n--- ${logFile} ---\n${tail(logFile)}`,
      );
    }
    return last.detail;
  };
  const halt = async () => {
    const pid = readPid(pidFile);
    if (pid !== undefined) await terminate(pid);
    await rm(pidFile, { force: true });
    await waitFor(() => isPortFree(port), 10_000);
  };

  const detail = await start();
  log(`ClickHouse ready at ${base} (${detail})`);
  return {
    url: base,
    startedByUs: true,
    detail,
    dir,
    pause: halt,
    resume: async () => {
      await start();
    },
    stop: async () => {
      await halt();
      if (options.removeDirOnStop) await rm(dir, { recursive: true, force: true });
    },
  };
}

runIfMain(import.meta.url, async () => {
  const clickhouse = await ensureClickHouse();
  const where = clickhouse.dir ? `started, data in ${clickhouse.dir}` : "reused";
  process.stdout.write(`clickhouse  ${where}  ${clickhouse.url}  ${clickhouse.detail}\n`);
  if (!clickhouse.startedByUs) return;
  process.stdout.write("Ctrl-C stops it.\n");
  closeOnSignal(clickhouse.stop);
  // Keep this process alive while the server runs.
  setInterval(() => {}, 1 << 30);
});
