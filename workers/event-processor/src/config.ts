/**
 * The event processor's configuration, parsed once by main.ts from the environment and
 * passed down as a typed object; nothing else reads `process.env`. Secrets (the
 * ClickHouse password, the database URL's credentials) are never logged: only
 * {@link describeConfig} output is.
 */
import type { EventStreamSettings } from "../../../core/audit/event-stream.js";
import {
  BadEnvironmentError,
  type Env,
  eventStreamSettings,
  integer,
  optional,
  url,
} from "../../shared/env.js";

export interface EventProcessorConfig {
  natsUrl: string;
  clickhouse: { url: string; username?: string; password?: string; database: string };
  /** fulcrum_app (RLS applies); governance-relevant events go to its `events` table. */
  databaseUrl: string;
  /** Port of the local WebSocket-to-TCP proxy; unset in deployments. */
  pgWsProxyPort: number | undefined;
  http: { host: string; port: number };
  /** A batch is written when it has this many events… */
  batchMaxEvents: number;
  /** …or when its first event has waited this long. */
  batchMaxWaitMs: number;
  /**
   * Batches being stored at once: while one waits for ClickHouse the next is decoded,
   * so the processor's CPU and ClickHouse's overlap instead of taking turns.
   */
  batchConcurrency: number;
  /** A message that failed this many deliveries goes to the dead-letter subject. */
  maxDeliver: number;
  /** JetStream redelivers an unacknowledged message after this long. */
  ackWaitMs: number;
  /** How often consumer lag (fulcrum_nats_pending_messages) is refreshed. */
  statsIntervalMs: number;
  /** Tests only: delay between storing a batch and acking it (see BatchOptions). */
  faultAckDelayMs: number;
  streams: EventStreamSettings;
}

// The shared helpers; BadEnvironmentError is re-exported for the worker's callers.
export { BadEnvironmentError } from "../../shared/env.js";

/** @throws BadEnvironmentError naming the first variable that is missing or malformed. */
export function parseEventProcessorConfig(env: Env): EventProcessorConfig {
  const databaseUrl = optional(env, "DATABASE_URL");
  if (!databaseUrl) throw new BadEnvironmentError("DATABASE_URL is required");
  url(env, "DATABASE_URL", "", ["postgres:", "postgresql:"]);
  const database = optional(env, "CLICKHOUSE_DATABASE") ?? "fulcrum";
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(database)) {
    throw new BadEnvironmentError("CLICKHOUSE_DATABASE must be a plain identifier");
  }
  const host = optional(env, "EVENT_PROCESSOR_HOST") ?? "127.0.0.1";
  const streams = eventStreamSettings(env);
  const username = optional(env, "CLICKHOUSE_USER");
  const password = env.CLICKHOUSE_PASSWORD;
  return {
    natsUrl: url(env, "NATS_URL", "nats://127.0.0.1:4222", ["nats:", "tls:"]),
    clickhouse: {
      url: url(env, "CLICKHOUSE_URL", "http://127.0.0.1:8123", ["http:", "https:"]),
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
      database,
    },
    databaseUrl,
    pgWsProxyPort:
      optional(env, "PG_WS_PROXY_PORT") === undefined
        ? undefined
        : integer(env, "PG_WS_PROXY_PORT", 0, 1, 65535),
    http: { host, port: integer(env, "EVENT_PROCESSOR_PORT", 8081, 0, 65535) },
    batchMaxEvents: integer(env, "BATCH_MAX_EVENTS", 10_000, 1, 100_000),
    batchMaxWaitMs: integer(env, "BATCH_MAX_WAIT_MS", 200, 1, 60_000),
    batchConcurrency: integer(env, "BATCH_CONCURRENCY", 2, 1, 16),
    maxDeliver: integer(env, "MAX_DELIVER", 5, 1, 1000),
    ackWaitMs: integer(env, "ACK_WAIT_MS", 10_000, 1000, 3_600_000),
    statsIntervalMs: integer(env, "STATS_INTERVAL_MS", 5000, 100, 600_000),
    faultAckDelayMs: integer(env, "EVENT_PROCESSOR_FAULT_ACK_DELAY_MS", 0, 0, 60_000),
    streams,
  };
}

/** What may be logged about the configuration: hosts and numbers, never credentials. */
export function describeConfig(config: EventProcessorConfig): Record<string, unknown> {
  return {
    nats: new URL(config.natsUrl).host,
    clickhouse: new URL(config.clickhouse.url).host,
    clickhouseDatabase: config.clickhouse.database,
    postgres: new URL(config.databaseUrl).host,
    http: `${config.http.host}:${config.http.port}`,
    batchMaxEvents: config.batchMaxEvents,
    batchMaxWaitMs: config.batchMaxWaitMs,
    batchConcurrency: config.batchConcurrency,
    maxDeliver: config.maxDeliver,
    ackWaitMs: config.ackWaitMs,
  };
}
