import {
  type EventStreamSettings,
  parseEventStreamSettings,
} from "../../core/audit/event-stream.js";
import { DEFAULT_POLICY_KEY_NAMESPACE } from "../../core/distribution/policy-keys.js";
import type { ClickHouseConfig } from "../../db/clickhouse/client.js";

/**
 * The functions' configuration, parsed once at each entry point (server.ts, lambda.ts)
 * from the environment and passed down as a typed object. Nothing else reads
 * `process.env`. Secrets (database passwords, the Redis token) are never logged: only
 * `describeConfig` output is.
 */
export interface FunctionsConfig {
  environment: string;
  /** The application role (fulcrum_app: no superuser, no BYPASSRLS). */
  databaseUrl: string;
  /**
   * The platform role (fulcrum_platform: fulcrum_app plus `tenants`; no superuser, no
   * BYPASSRLS), for TenantService only: `tenants` is not granted to the application
   * role. Unset: TenantService answers FailedPrecondition.
   */
  databasePlatformUrl: string | undefined;
  /** Port of the local WebSocket-to-TCP proxy; unset in deployments (Neon speaks WebSocket). */
  pgWsProxyPort: number | undefined;
  redisRestUrl: string;
  redisRestToken: string;
  /** Prefix of every key the edge's distribution store uses (default `fulcrum:v1`). */
  redisKeyNamespace: string;
  /** Lower-case hex SHA-256 of the platform operator's key; unset: TenantService is closed. */
  platformAdminKeySha256: string | undefined;
  /** The OPA binary that compiles policies to wasm. */
  opaBin: string;
  /** The wasm builtins OPA may compile against; default policies/capabilities.json. */
  opaCapabilitiesPath: string | undefined;
  /** NATS (TCP) for the audit events: management changes out, StreamEvents in. */
  natsUrl: string;
  /** The audit streams' settings (EVENTS_STREAM_*), the same as every producer's. */
  eventStreams: EventStreamSettings;
  /** ClickHouse, where the query API reads the audit events (password: a secret). */
  clickhouse: ClickHouseConfig;
  /**
   * FULCRUM_ALLOW_PRIVATE_WEBHOOKS=true: webhooks may point at loopback / private hosts
   * (the local stack and tests, whose receivers run on 127.0.0.1). Off in deployments.
   */
  allowPrivateWebhooks: boolean;
}

export class BadEnvironmentError extends Error {
  override name = "BadEnvironmentError";
}

type Env = Record<string, string | undefined>;

function required(env: Env, name: string): string {
  const value = env[name]?.trim();
  if (!value) throw new BadEnvironmentError(`${name} is required`);
  return value;
}

function optional(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function postgresUrl(name: string, value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new BadEnvironmentError(`${name} is not a URL`);
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw new BadEnvironmentError(`${name} must be a postgres:// URL`);
  }
  return value;
}

function redisNamespace(value: string | undefined): string {
  if (value === undefined) return DEFAULT_POLICY_KEY_NAMESPACE;
  if (!/^[A-Za-z0-9][A-Za-z0-9:_-]{0,63}$/.test(value)) {
    throw new BadEnvironmentError("REDIS_KEY_NAMESPACE must be 1-64 of A-Z a-z 0-9 : _ -");
  }
  return value;
}

function serviceUrl(name: string, value: string, protocols: readonly string[]): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new BadEnvironmentError(`${name} is not a URL`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new BadEnvironmentError(`${name} must be a ${protocols.join(" or ")}// URL`);
  }
  return value;
}

function eventStreams(env: Env): EventStreamSettings {
  try {
    return parseEventStreamSettings(env);
  } catch (error) {
    throw new BadEnvironmentError((error as Error).message);
  }
}

function clickhouseDatabase(value: string | undefined): string {
  if (value === undefined) return "fulcrum";
  if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(value)) {
    throw new BadEnvironmentError("CLICKHOUSE_DATABASE must be 1-64 of A-Z a-z 0-9 _");
  }
  return value;
}

/** @throws BadEnvironmentError naming the first variable that is missing or malformed. */
export function parseFunctionsConfig(env: Env): FunctionsConfig {
  const databaseUrl = postgresUrl("DATABASE_URL", required(env, "DATABASE_URL"));
  const platformUrl = optional(env, "DATABASE_PLATFORM_URL");
  const proxyPort = optional(env, "PG_WS_PROXY_PORT");
  if (proxyPort !== undefined && !/^[1-9][0-9]{0,4}$/.test(proxyPort)) {
    throw new BadEnvironmentError("PG_WS_PROXY_PORT must be a port number");
  }
  const redisRestUrl = required(env, "UPSTASH_REDIS_REST_URL");
  if (!/^https?:\/\//.test(redisRestUrl)) {
    throw new BadEnvironmentError("UPSTASH_REDIS_REST_URL must be an http(s) URL");
  }
  const adminKeyHash = optional(env, "PLATFORM_ADMIN_KEY_SHA256")?.toLowerCase();
  if (adminKeyHash !== undefined && !/^[0-9a-f]{64}$/.test(adminKeyHash)) {
    throw new BadEnvironmentError("PLATFORM_ADMIN_KEY_SHA256 must be 64 hex characters");
  }
  return {
    environment: optional(env, "FULCRUM_ENV") ?? "development",
    databaseUrl,
    databasePlatformUrl: platformUrl && postgresUrl("DATABASE_PLATFORM_URL", platformUrl),
    pgWsProxyPort: proxyPort === undefined ? undefined : Number(proxyPort),
    redisRestUrl,
    redisRestToken: required(env, "UPSTASH_REDIS_REST_TOKEN"),
    redisKeyNamespace: redisNamespace(optional(env, "REDIS_KEY_NAMESPACE")),
    platformAdminKeySha256: adminKeyHash,
    opaBin: required(env, "OPA_BIN"),
    opaCapabilitiesPath: optional(env, "OPA_CAPABILITIES"),
    natsUrl: serviceUrl("NATS_URL", optional(env, "NATS_URL") ?? "nats://127.0.0.1:4222", [
      "nats:",
      "tls:",
    ]),
    eventStreams: eventStreams(env),
    clickhouse: {
      url: serviceUrl(
        "CLICKHOUSE_URL",
        optional(env, "CLICKHOUSE_URL") ?? "http://127.0.0.1:8123",
        ["http:", "https:"],
      ),
      ...(optional(env, "CLICKHOUSE_USER") ? { username: optional(env, "CLICKHOUSE_USER") } : {}),
      ...(optional(env, "CLICKHOUSE_PASSWORD")
        ? { password: optional(env, "CLICKHOUSE_PASSWORD") }
        : {}),
      database: clickhouseDatabase(optional(env, "CLICKHOUSE_DATABASE")),
    },
    allowPrivateWebhooks: optional(env, "FULCRUM_ALLOW_PRIVATE_WEBHOOKS") === "true",
  };
}

/** What may be logged about the configuration: hosts, never credentials. */
export function describeConfig(config: FunctionsConfig): Record<string, unknown> {
  const host = (url: string | undefined) => (url ? new URL(url).host : undefined);
  return {
    environment: config.environment,
    database: host(config.databaseUrl),
    platformDatabase: host(config.databasePlatformUrl),
    redis: host(config.redisRestUrl),
    nats: host(config.natsUrl),
    clickhouse: host(config.clickhouse.url),
    clickhouseDatabase: config.clickhouse.database,
    tenantService: config.platformAdminKeySha256 ? "enabled" : "disabled",
  };
}
