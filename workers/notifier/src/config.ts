/**
 * The notifier's configuration, parsed once by main.ts from the environment and passed
 * down as a typed object; nothing else reads `process.env`. Only {@link describeConfig}
 * output is ever logged (no database credentials, no webhook secrets).
 */
import type { EventStreamSettings } from "../../../core/audit/event-stream.js";
import {
  BadEnvironmentError,
  boolean,
  type Env,
  eventStreamSettings,
  integer,
  optional,
  url,
} from "../../shared/env.js";

export interface NotifierConfig {
  natsUrl: string;
  /** fulcrum_app (RLS applies): reads `webhooks`, writes `webhook_deliveries`. */
  databaseUrl: string;
  /** Port of the local WebSocket-to-TCP proxy; unset in deployments. */
  pgWsProxyPort: number | undefined;
  http: { host: string; port: number };
  /** Events handled at once (each POSTs to every webhook of its tenant that wants it). */
  concurrency: number;
  /** One attempt's time limit (connect + answer). */
  requestTimeoutMs: number;
  /** JetStream redelivers a message the notifier neither acked nor naked after this long. */
  ackWaitMs: number;
  /**
   * Multiplies the retry backoff (1 s, 5 s, 30 s, 2 min, 10 min). 1 in every deployment;
   * tests use a small value so six attempts take a second.
   */
  backoffScale: number;
  /** Deliver to loopback / private addresses (local stack and tests only). */
  allowPrivateWebhooks: boolean;
  /** How often consumer lag is refreshed for /metrics. */
  statsIntervalMs: number;
  streams: EventStreamSettings;
}

// The shared helpers; BadEnvironmentError is re-exported for the worker's callers.
export { BadEnvironmentError } from "../../shared/env.js";

/** @throws BadEnvironmentError naming the first variable that is missing or malformed. */
export function parseNotifierConfig(env: Env): NotifierConfig {
  const databaseUrl = url(env, "DATABASE_URL", undefined, ["postgres:", "postgresql:"]);
  const scaleRaw = optional(env, "NOTIFIER_BACKOFF_SCALE");
  const backoffScale = scaleRaw === undefined ? 1 : Number(scaleRaw);
  if (!Number.isFinite(backoffScale) || backoffScale <= 0 || backoffScale > 10) {
    throw new BadEnvironmentError("NOTIFIER_BACKOFF_SCALE must be a number above 0, at most 10");
  }
  const streams = eventStreamSettings(env);
  return {
    natsUrl: url(env, "NATS_URL", "nats://127.0.0.1:4222", ["nats:", "tls:"]),
    databaseUrl,
    pgWsProxyPort:
      optional(env, "PG_WS_PROXY_PORT") === undefined
        ? undefined
        : integer(env, "PG_WS_PROXY_PORT", 0, 1, 65535),
    http: {
      host: optional(env, "NOTIFIER_HOST") ?? "127.0.0.1",
      port: integer(env, "NOTIFIER_PORT", 8082, 0, 65535),
    },
    concurrency: integer(env, "NOTIFIER_CONCURRENCY", 16, 1, 256),
    requestTimeoutMs: integer(env, "NOTIFIER_TIMEOUT_MS", 10_000, 100, 60_000),
    ackWaitMs: integer(env, "ACK_WAIT_MS", 60_000, 1000, 3_600_000),
    backoffScale,
    allowPrivateWebhooks: boolean(env, "NOTIFIER_ALLOW_PRIVATE_WEBHOOKS"),
    statsIntervalMs: integer(env, "STATS_INTERVAL_MS", 5000, 100, 600_000),
    streams,
  };
}

/** What may be logged about the configuration: hosts and numbers, never credentials. */
export function describeConfig(config: NotifierConfig): Record<string, unknown> {
  return {
    nats: new URL(config.natsUrl).host,
    postgres: new URL(config.databaseUrl).host,
    http: `${config.http.host}:${config.http.port}`,
    concurrency: config.concurrency,
    requestTimeoutMs: config.requestTimeoutMs,
    ackWaitMs: config.ackWaitMs,
    backoffScale: config.backoffScale,
    allowPrivateWebhooks: config.allowPrivateWebhooks,
  };
}
