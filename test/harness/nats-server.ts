import { rm } from "node:fs/promises";
import { join } from "node:path";
import { freePort } from "../../scripts/lib/ports.js";
import { type EnsuredService, ensureNats } from "../../scripts/services/ensure-services.js";
import { repoRoot } from "../../scripts/services/service.js";

export interface TestNats {
  /** nats://127.0.0.1:<port> (TCP clients: functions, the event processor). */
  url: string;
  /** ws://127.0.0.1:<port> (the edge Worker). */
  wsUrl: string;
  port: number;
  wsPort: number;
  /** Its JetStream data, log and pid file. */
  dir: string;
  /** Stops the server, keeping its JetStream data (a crash or restart in between). */
  pause(): Promise<void>;
  /** Starts it again on the same ports and data. */
  resume(): Promise<void>;
  /** Stops it and deletes its data. */
  stop(): Promise<void>;
}

/**
 * A NATS server with JetStream and a WebSocket listener of the test's own, on free
 * ports: the audit streams have fixed names, so tests never share the machine's
 * server, and a test may stop and restart its own. Starts in ~20 ms.
 */
export async function startTestNats(): Promise<TestNats> {
  const port = await freePort();
  const wsPort = await freePort();
  const dir = join(repoRoot, ".tmp", "services", `nats-test-${port}`);
  const start = () => relaunchTestNats({ port, wsPort, dir });
  let server: EnsuredService | undefined = await start();
  if (!server.startedByUs) throw new Error(`port ${port} already had a NATS server`);
  return {
    port,
    wsPort,
    dir,
    url: server.url,
    wsUrl: server.wsUrl ?? `ws://127.0.0.1:${wsPort}`,
    async pause() {
      await server?.stop();
      server = undefined;
    },
    async resume() {
      server ??= await start();
    },
    async stop() {
      await server?.stop();
      server = undefined;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts (again) the test NATS on `port`/`wsPort` with the data in `dir`: for a test in
 * another process than the one that started it (an e2e test restarting the stack's
 * NATS). The original handle's stop() still stops it: it finds the pid in `dir`.
 */
export function relaunchTestNats(at: { port: number; wsPort: number; dir: string }) {
  return ensureNats({ ...at, url: `nats://127.0.0.1:${at.port}` });
}
