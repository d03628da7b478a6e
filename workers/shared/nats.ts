/**
 * The workers' NATS connection: reconnects forever (the stream is durable, so a worker
 * only ever waits for NATS to come back) and keeps track of whether it is connected for
 * /healthz. JetStream requests time out after 10 s.
 */
import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import type { Logger } from "../../core/logging/logger.js";

type NatsConnection = Awaited<ReturnType<typeof connect>>;

export interface WorkerNats {
  nc: NatsConnection;
  jsm: JetStreamManager;
  js: JetStreamClient;
  /** The `nats` part of a worker's health document. */
  health(): { connected: boolean; server: string | undefined };
}

/** `logger`, when given, logs every disconnect and reconnect. */
export async function connectWorkerNats(
  servers: string,
  name: string,
  logger?: Logger,
): Promise<WorkerNats> {
  const nc = await connect({
    servers,
    name,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 1000,
    reconnectJitter: 500,
    waitOnFirstConnect: true,
  });
  let connected = true;
  void (async () => {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") connected = false;
      if (status.type === "reconnect") connected = true;
      if (logger && (status.type === "disconnect" || status.type === "reconnect")) {
        logger.info(`nats ${status.type}`, { server: status.server });
      }
    }
  })().catch(() => {});
  return {
    nc,
    jsm: await jetstreamManager(nc, { timeout: 10_000 }),
    js: jetstream(nc, { timeout: 10_000 }),
    health() {
      const ok = connected && !nc.isClosed();
      return { connected: ok, server: ok ? nc.getServer() : undefined };
    },
  };
}
