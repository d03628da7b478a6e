import { rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureBinary } from "./install.js";
import type { ProbeResult } from "./probe.js";
import { type Log, stderrLog, tail, waitFor } from "./process.js";

export type ServiceName = "postgres" | "redis" | "nats";

export interface EnsureOptions {
  /** Address to probe; defaults to the service's FULCRUM_*_URL, then the standard port. */
  url?: string;
  /** Probe and, if need be, start on 127.0.0.1:<port> (tests use a free port). */
  port?: number;
  /** Data, log and pid of a project-owned instance; default `.tmp/services/<name>`. */
  dir?: string;
  /** Delete `dir` after stop(): for throwaway instances in tests. */
  removeDirOnStop?: boolean;
  /** May install the Debian package when running as root (default true). */
  allowInstall?: boolean;
  /** How long a started server may take to answer the probe. */
  timeoutMs?: number;
  log?: Log;
}

export interface EnsuredService {
  name: ServiceName;
  url: string;
  startedByUs: boolean;
  /** What the probe saw, e.g. "nats-server 2.9.10, JetStream on". */
  detail: string;
  /** Where a project-owned instance lives; absent when reused. */
  dir?: string;
  /** NATS started by us: its WebSocket listener (ws://127.0.0.1:<wsPort>). */
  wsUrl?: string;
  /** Stops what we started; a no-op for a reused server, which is not ours. */
  stop(): Promise<void>;
}

export interface Launched {
  url: string;
  logFile: string;
  /** Set when the instance had to live elsewhere than the requested dir (see postgres.ts). */
  dir?: string;
  /** NATS only: the WebSocket listener, for clients inside workerd. */
  wsUrl?: string;
  /** False once the server process has exited: stop waiting for it. */
  alive?(): boolean;
  stop(): Promise<void>;
}

export interface ServiceSpec<Bin> {
  name: ServiceName;
  envVar: string;
  defaultUrl: string;
  defaultPort: number;
  what: string;
  aptPackage: string;
  probe(url: URL): Promise<ProbeResult>;
  findBinary(): Bin | undefined;
  launch(bin: Bin, at: { port: number; dir: string; log: Log }): Promise<Launched>;
}

export const repoRoot = resolve(fileURLToPath(new URL("../..", import.meta.url)));

const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]", "::1"]);

/** Probe → reuse; otherwise find or install the server and start our own instance. */
export async function ensureService<Bin>(
  spec: ServiceSpec<Bin>,
  options: EnsureOptions = {},
): Promise<EnsuredService> {
  const log = options.log ?? stderrLog;
  const url = new URL(options.url ?? process.env[spec.envVar] ?? spec.defaultUrl);
  if (options.port !== undefined) {
    url.hostname = "127.0.0.1";
    url.port = String(options.port);
  }
  const port = url.port ? Number(url.port) : spec.defaultPort;
  const where = `${url.hostname}:${port}`;
  const reuse = (detail: string): EnsuredService => ({
    name: spec.name,
    url: url.toString(),
    startedByUs: false,
    detail,
    stop: async () => {},
  });

  const first = await spec.probe(url);
  if (first.healthy) return reuse(first.detail);
  if (first.listening) {
    throw new Error(
      `${spec.what} at ${where} answers but cannot be used: ${first.detail}. ` +
        `Fix or stop that server, or set ${spec.envVar} to another port.`,
    );
  }
  if (!LOCAL_HOSTS.has(url.hostname)) {
    throw new Error(
      `Nothing answers at ${where} (${first.detail}); only a local ${spec.what} can be started ` +
        `by this script. Check ${spec.envVar}.`,
    );
  }

  const { found, installed } = await ensureBinary(
    () => spec.findBinary(),
    { what: spec.what, aptPackage: spec.aptPackage, allowInstall: options.allowInstall ?? true },
    log,
  );
  if (installed) {
    // Debian's package may start its own server on the standard port as it installs.
    const again = await spec.probe(url);
    if (again.healthy) return reuse(again.detail);
  }

  const dir = resolve(options.dir ?? join(repoRoot, ".tmp", "services", spec.name));
  log(`starting ${spec.what} on 127.0.0.1:${port} (data in ${dir})`);
  const launched = await spec.launch(found, { port, dir, log });
  const stop = async () => {
    await launched.stop();
    if (!options.removeDirOnStop) return;
    await rm(dir, { recursive: true, force: true });
    if (launched.dir) await rm(launched.dir, { recursive: true, force: true });
  };
  let last: ProbeResult | undefined;
  const healthy = await waitFor(async () => {
    last = await spec.probe(new URL(launched.url));
    return last.healthy || launched.alive?.() === false;
  }, options.timeoutMs ?? 30_000);
  if (!healthy || !last?.healthy) {
    const logTail = tail(launched.logFile);
    await stop().catch(() => {});
    throw new Error(
      `${spec.what} started on 127.0.0.1:${port} but did not become healthy ` +
        `(${last?.detail ?? "no probe"}).\n--- ${launched.logFile} ---\n${logTail}`,
    );
  }
  log(`${spec.what} ready at ${launched.url}`);
  return {
    name: spec.name,
    url: launched.url,
    startedByUs: true,
    detail: last.detail,
    dir: launched.dir ?? dir,
    ...(launched.wsUrl ? { wsUrl: launched.wsUrl } : {}),
    stop,
  };
}
