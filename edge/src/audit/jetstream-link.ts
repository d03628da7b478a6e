import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
  type PubAck,
} from "@nats-io/jetstream";
import { type NatsConnection, wsconnect } from "@nats-io/nats-core";
import {
  ensureEventStreams,
  eventPublishOptions,
  isNoStream,
} from "../../../core/audit/event-stream.js";
import type { Logger } from "../../../core/logging/logger.js";
import type { AuditTransportConfig } from "../config.js";

/** One message for the events stream: `msgID` is the event id (JetStream deduplicates on it). */
export interface OutgoingEvent {
  id: string;
  subject: string;
  body: Uint8Array;
}

export type PublishOutcome = { ok: true; ack: PubAck } | { ok: false; error: unknown };

/** How long connecting (WebSocket + NATS handshake) may take. */
const CONNECT_TIMEOUT_MS = 5000;

interface Link {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
}

/**
 * The audit buffer's one NATS connection (WebSocket), kept across requests and alarms.
 * The client reconnects by itself after an outage (`onReconnect` is called then, so the
 * buffer can drain at once); a closed connection is replaced on the next publish. The
 * streams are ensured on the first connect and again whenever a publish finds none
 * (a deleted stream comes back on the next publish).
 */
export class JetStreamLink {
  private link: Link | undefined;
  private connecting: Promise<Link> | undefined;
  private streamsReady = false;
  private up = false;

  constructor(
    private readonly config: AuditTransportConfig,
    private readonly logger: Logger,
    private readonly onReconnect: () => void,
  ) {}

  /** Whether the connection is open now (not closed, not reconnecting). */
  get connected(): boolean {
    return this.up && this.link !== undefined && !this.link.nc.isClosed();
  }

  /** Whether a publish would have to wait for the client to reconnect. */
  get reconnecting(): boolean {
    return this.link !== undefined && !this.link.nc.isClosed() && !this.up;
  }

  /**
   * Publishes every event concurrently; one outcome per event, in order. Never throws:
   * a connection that cannot be made fails every event.
   */
  async publish(events: readonly OutgoingEvent[], timeoutMs: number): Promise<PublishOutcome[]> {
    let link: Link;
    try {
      link = await this.connect();
      if (!this.streamsReady) await this.ensureStreams(link);
    } catch (error) {
      return events.map(() => ({ ok: false, error }));
    }
    const outcomes = await Promise.all(events.map((e) => publishOne(link, e, timeoutMs)));
    const missing = outcomes.some((o) => !o.ok && isNoStream(o.error));
    if (!missing) return outcomes;
    // The stream was deleted (or never created): create it and retry those events once.
    try {
      await this.ensureStreams(link);
    } catch (error) {
      this.logger.error("audit stream could not be created", { error: String(error) });
      return outcomes;
    }
    return Promise.all(
      outcomes.map((o, i) =>
        !o.ok && isNoStream(o.error) ? publishOne(link, events[i] as OutgoingEvent, timeoutMs) : o,
      ),
    );
  }

  private async ensureStreams(link: Link): Promise<void> {
    this.streamsReady = false;
    await ensureEventStreams(link.jsm, this.config.streams);
    this.streamsReady = true;
  }

  private connect(): Promise<Link> {
    if (this.link && !this.link.nc.isClosed()) return Promise.resolve(this.link);
    this.link = undefined;
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private async open(): Promise<Link> {
    const nc = await wsconnect({
      servers: this.config.natsWsUrl,
      ...(this.config.natsToken ? { token: this.config.natsToken } : {}),
      name: "fulcrum-edge-audit-buffer",
      timeout: CONNECT_TIMEOUT_MS,
      // Reconnect forever: the buffer holds the events meanwhile.
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
    });
    this.up = true;
    this.streamsReady = false;
    void this.watch(nc);
    const link = { nc, js: jetstream(nc), jsm: await jetstreamManager(nc) };
    this.link = link;
    this.logger.info("audit buffer connected to NATS", { server: nc.getServer() });
    return link;
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (status.type === "disconnect") this.up = false;
      if (status.type === "reconnect") {
        this.up = true;
        this.onReconnect();
      }
    }
    this.up = false;
  }

  /** Closes the connection (tests; a Durable Object is simply evicted). */
  async close(): Promise<void> {
    const link = this.link;
    this.link = undefined;
    await link?.nc.close();
  }
}

function publishOne(link: Link, event: OutgoingEvent, timeoutMs: number): Promise<PublishOutcome> {
  return link.js.publish(event.subject, event.body, eventPublishOptions(event.id, timeoutMs)).then(
    (ack): PublishOutcome => ({ ok: true, ack }),
    (error: unknown): PublishOutcome => ({ ok: false, error }),
  );
}
