import { Redis } from "@upstash/redis";
import { sql } from "drizzle-orm";
import { type BudgetKeys, budgetKeysIn } from "../../core/budget/budget-keys.js";
import { policyKeysIn } from "../../core/distribution/policy-keys.js";
import { createLogger, type Logger } from "../../core/logging/logger.js";
import { Metrics } from "../../core/observability/metrics.js";
import { type ClickHouseClient, createClickHouse } from "../../db/clickhouse/client.js";
import { createDb, type Db } from "../../db/client.js";
import { type Authenticator, createAuthenticator } from "./auth/authenticator.js";
import type { FunctionsConfig } from "./config.js";
import { createEventPublisher, type EventPublisher } from "./events/event-publisher.js";
import { FAILED_METRIC, PUBLISHED_METRIC } from "./events/management-events.js";
import { createEventNats, type EventNats } from "./events/nats-connection.js";
import { createOpaPolicyCompiler, type PolicyCompiler } from "./policy-compiler/index.js";
import { createRedisKeyPublisher, type KeyPublisher } from "./publish/key-publisher.js";
import { createRedisPolicyPublisher, type PolicyPublisher } from "./publish/policy-publisher.js";
import { createEvaluationSandbox, type EvaluationSandbox } from "./sandbox/evaluation-sandbox.js";

/**
 * Everything a management handler may use, built once per process from the parsed
 * configuration and passed to the services (no globals, no env reads below here).
 */
export interface FunctionsDeps {
  /** The application role: every tenant table through `inTenant` only. */
  db: Db;
  /**
   * The platform role (fulcrum_platform: the application's grants plus `tenants`, RLS
   * still applies), for TenantService only; undefined when not configured.
   */
  platformDb: Db | undefined;
  authenticator: Authenticator;
  compiler: PolicyCompiler;
  publisher: PolicyPublisher;
  /** The edge's API-key records (core/distribution/key-records.ts), same namespace. */
  keyPublisher: KeyPublisher;
  /** The edge's Redis (through @upstash/redis): budgets, envelope records, approvals. */
  redis: Redis;
  /** Budget, envelope and approval keys (core/budget/budget-keys.ts), same namespace. */
  budgetKeys: BudgetKeys;
  /** Worker threads with time and memory limits, where dry runs evaluate tenant wasm. */
  sandbox: EvaluationSandbox;
  /** NATS (one TCP connection, opened on first use): management events out, StreamEvents in. */
  nats: EventNats;
  /** Management changes to JetStream after their commit (events/management-events.ts). */
  eventPublisher: EventPublisher;
  /** The audit events, for the EventStore query API. */
  clickhouse: ClickHouseClient;
  /** Webhooks may name loopback / private hosts (config.allowPrivateWebhooks). */
  allowPrivateWebhooks: boolean;
  /** Process counters (management events published / failed). */
  metrics: Metrics;
  logger: Logger;
  now: () => Date;
  /**
   * Whether the database answers, for health checks. ClickHouse and NATS are not part
   * of it: management works without them (see README), so their outage must not take
   * the management API out of a load balancer.
   */
  isReady: () => Promise<boolean>;
  close: () => Promise<void>;
}

export function createFunctionsDeps(config: FunctionsConfig): FunctionsDeps {
  const logger = createLogger("fulcrum-functions");
  const common = {
    ...(config.pgWsProxyPort !== undefined ? { localProxyPort: config.pgWsProxyPort } : {}),
    onIdleError: (error: Error) => logger.error("idle database connection failed", { error }),
  };
  const app = createDb({ connectionString: config.databaseUrl, ...common });
  const platform = config.databasePlatformUrl
    ? createDb({ connectionString: config.databasePlatformUrl, max: 2, ...common })
    : undefined;
  const redis = new Redis({ url: config.redisRestUrl, token: config.redisRestToken });
  const keys = policyKeysIn(config.redisKeyNamespace);
  const now = () => new Date();
  const sandbox = createEvaluationSandbox();
  const nats = createEventNats({ url: config.natsUrl, streams: config.eventStreams, logger });
  const clickhouse = createClickHouse(config.clickhouse);
  const metrics = new Metrics()
    .describe(PUBLISHED_METRIC, "Management changes published to JetStream after their commit")
    .describe(
      FAILED_METRIC,
      "Management changes committed but not published (the PostgreSQL row remains)",
    );
  return {
    db: app.db,
    platformDb: platform?.db,
    authenticator: createAuthenticator(app.db, config.platformAdminKeySha256),
    compiler: createOpaPolicyCompiler({
      opaBin: config.opaBin,
      ...(config.opaCapabilitiesPath ? { capabilitiesPath: config.opaCapabilitiesPath } : {}),
    }),
    publisher: createRedisPolicyPublisher(redis, keys, now),
    keyPublisher: createRedisKeyPublisher(redis, keys.apiKey, now),
    redis,
    budgetKeys: budgetKeysIn(config.redisKeyNamespace),
    nats,
    eventPublisher: createEventPublisher(nats),
    clickhouse,
    allowPrivateWebhooks: config.allowPrivateWebhooks,
    metrics,
    logger,
    sandbox,
    now,
    isReady: async () => {
      try {
        await app.db.execute(sql`select 1`);
        return true;
      } catch {
        return false;
      }
    },
    close: async () => {
      await sandbox.close();
      await app.close();
      await platform?.close();
      await nats.close();
      await clickhouse.close();
    },
  };
}
