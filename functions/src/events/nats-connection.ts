/**
 * The management API's one NATS connection (TCP, `@nats-io/transport-node`): opened
 * lazily on first use, reconnecting by itself afterwards, with the audit streams
 * created or updated (`ensureEventStreams`) once per successful connect. A connect that
 * fails is not cached: a use a second later tries again, so functions started before
 * NATS recover without a restart.
 */
import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { type EventStreamSettings, ensureEventStreams } from "../../../core/audit/event-stream.js";
import type { Logger } from "../../../core/logging/logger.js";

export interface NatsHandles {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

export interface EventNats {
  /** The connection, opened (and the streams ensured) on first call. Rejects when NATS is unreachable. */
  get(): Promise<NatsHandles>;
  /** Whether the connection is open and not between reconnects right now. */
  connected(): boolean;
  /** ensureEventStreams again (a publish found no stream: it was deleted). */
  ensureStreams(): Promise<void>;
  close(): Promise<void>;
}

export interface EventNatsOptions {
  url: string;
  streams: EventStreamSettings;
  logger: Logger;
  /** Deadline of the first connect in ms (default 2000). */
  connectTimeoutMs?: number;
  /** After a failed connect, fail at once for this long before trying again (default 1000). */
  retryAfterMs?: number;
}

export function createEventNats(options: EventNatsOptions): EventNats {
  let pending: Promise<NatsHandles> | undefined;
  let up = false;
  let closed = false;
  // A failed connect is repeated at most once a second: callers do not each wait on it.
  let failure: { at: number; error: unknown } | undefined;
  const retryAfterMs = options.retryAfterMs ?? 1000;

  const open = async (): Promise<NatsHandles> => {
    const nc = await connect({
      servers: options.url,
      name: "fulcrum-functions",
      timeout: options.connectTimeoutMs ?? 2000,
      reconnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 500,
    });
    up = true;
    void (async () => {
      for await (const status of nc.status()) {
        if (status.type === "disconnect") up = false;
        else if (status.type === "reconnect") {
          up = true;
          // The server may have come back empty (a new machine, a wiped store).
          ensureEventStreams(await jetstreamManager(nc), options.streams).catch((error) =>
            options.logger.error("audit streams not ensured after reconnect", { error }),
          );
        }
      }
    })().catch(() => undefined);
    void nc.closed().then(() => {
      up = false;
      pending = undefined;
    });
    try {
      const jsm = await jetstreamManager(nc);
      await ensureEventStreams(jsm, options.streams);
      return { nc, js: jetstream(nc), jsm };
    } catch (error) {
      // Not cached (the next use connects again), so this connection must not linger.
      await nc.close().catch(() => undefined);
      throw error;
    }
  };

  return {
    get() {
      if (closed) return Promise.reject(new Error("the NATS connection is closed"));
      if (!pending) {
        if (failure && Date.now() - failure.at < retryAfterMs) return Promise.reject(failure.error);
        pending = open();
        pending.then(
          () => {
            failure = undefined;
          },
          (error: unknown) => {
            pending = undefined;
            failure = { at: Date.now(), error };
          },
        );
      }
      return pending;
    },
    connected: () => up,
    async ensureStreams() {
      const { jsm } = await this.get();
      await ensureEventStreams(jsm, options.streams);
    },
    async close() {
      closed = true;
      const current = pending;
      pending = undefined;
      if (!current) return;
      const handles = await current.catch(() => undefined);
      await handles?.nc.drain().catch(() => handles.nc.close());
    },
  };
}
