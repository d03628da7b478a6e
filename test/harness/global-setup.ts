import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { migrateClickHouse } from "../../db/clickhouse/migrate.js";
import { startEventProcessorServer } from "../../scripts/lib/event-processor-server.js";
import { startNotifierServer } from "../../scripts/lib/notifier-server.js";
import { freePort } from "../../scripts/lib/ports.js";
import { startWranglerDev } from "../../scripts/lib/wrangler-dev.js";
import { ensureClickHouse } from "../../scripts/services/clickhouse.js";
import { ensurePostgres, ensureRedis } from "../../scripts/services/ensure-services.js";
import { repoRoot } from "../../scripts/services/service.js";
import { startFunctionsStack } from "./functions-stack.js";
import { startTestNats } from "./nats-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    edgeUrl: string;
    functionsUrl: string;
    /** The platform operator's key of the e2e functions (TenantService). */
    platformKey: string;
    /** The e2e tier's own Redis (never the machine's): tests may stop and resume it. */
    e2eRedisUrl: string;
    /** The key namespace the e2e functions and edge share in that Redis. */
    redisKeyNamespace: string;
    /** The e2e tier's own NATS, which its edge (ws), functions and processor (TCP) use. */
    e2eNats: { url: string; wsUrl: string; port: number; wsPort: number; dir: string };
    /** The ClickHouse database the e2e event processor writes. */
    e2eClickHouse: { url: string; database: string };
    /** /healthz and /metrics of the e2e event processor. */
    eventProcessorUrl: string;
    /** /healthz and /metrics of the e2e webhook notifier. */
    notifierUrl: string;
    /** The edge's env file (Redis, NATS): a test may start a second edge with it. */
    edgeEnvFile: string;
  }
}

/**
 * The whole local stack once for the e2e tier, on free ports: PostgreSQL (a fresh
 * database), a Redis of this tier's own (so a test may stop it), the management API
 * (functions) and the edge Worker under `wrangler dev`, both reaching that Redis
 * through the project's Upstash-REST server with one key namespace; and the audit
 * pipeline: a NATS of its own (with the WebSocket listener the edge publishes to), a
 * fresh ClickHouse database and the event processor as its own process.
 */
export default async function setup(project: TestProject) {
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };
  try {
    const postgres = await ensurePostgres();
    stops.push(postgres.stop);
    const redisPort = await freePort();
    const redis = await ensureRedis({
      port: redisPort,
      dir: join(repoRoot, ".tmp", "services", `redis-e2e-${redisPort}`),
      removeDirOnStop: true,
    });
    stops.push(redis.stop);
    const nats = await startTestNats();
    stops.push(nats.stop);
    const clickhouseServer = await ensureClickHouse();
    stops.push(clickhouseServer.stop);
    const clickhouse = {
      url: clickhouseServer.url,
      database: `fulcrum_e2e_${randomBytes(4).toString("hex")}`,
    };
    await migrateClickHouse(clickhouse);
    const pg = new URL(postgres.url);
    const stack = await startFunctionsStack(
      { pgAddress: `${pg.hostname}:${pg.port || "5432"}`, redisUrl: redis.url },
      { natsUrl: nats.url, clickhouse },
    );
    stops.push(stack.stop);
    // The children's output, for reading after a failed run (git-ignored).
    const logDir = join(repoRoot, ".tmp", "e2e-logs");
    mkdirSync(logDir, { recursive: true });
    const logTo = (name: string) => createWriteStream(join(logDir, name));
    const processor = await startEventProcessorServer(
      await freePort(),
      {
        NATS_URL: nats.url,
        CLICKHOUSE_URL: clickhouse.url,
        CLICKHOUSE_DATABASE: clickhouse.database,
        DATABASE_URL: stack.config.databaseUrl,
        PG_WS_PROXY_PORT: String(stack.proxy.port),
        // Small batches: e2e tests wait for single events.
        BATCH_MAX_WAIT_MS: "50",
      },
      logTo("event-processor.log"),
    );
    stops.push(processor.stop);
    const notifier = await startNotifierServer(
      await freePort(),
      {
        NATS_URL: nats.url,
        DATABASE_URL: stack.config.databaseUrl,
        PG_WS_PROXY_PORT: String(stack.proxy.port),
        // Test receivers listen on 127.0.0.1; retries after 10 ms, 50 ms, … not 1 s, 5 s, ….
        NOTIFIER_ALLOW_PRIVATE_WEBHOOKS: "true",
        NOTIFIER_BACKOFF_SCALE: "0.01",
      },
      logTo("notifier.log"),
    );
    stops.push(notifier.stop);

    // The token stays off the command line (and out of `ps`): a dotenv file of our own.
    const dir = mkdtempSync(join(tmpdir(), "fulcrum-e2e-edge-"));
    stops.push(async () => rmSync(dir, { recursive: true, force: true }));
    const envFile = join(dir, "edge.env");
    writeFileSync(
      envFile,
      [
        `UPSTASH_REDIS_REST_URL=${stack.config.redisRestUrl}`,
        `UPSTASH_REDIS_REST_TOKEN=${stack.config.redisRestToken}`,
        `REDIS_KEY_NAMESPACE=${stack.config.redisKeyNamespace}`,
        `NATS_WS_URL=${nats.wsUrl}`,
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const worker = await startWranglerDev(await freePort(), {
      envFile,
      logFile: logTo("wrangler.log"),
    });
    stops.push(worker.stop);

    project.provide("edgeUrl", worker.url);
    project.provide("edgeEnvFile", envFile);
    project.provide("functionsUrl", stack.url);
    project.provide("platformKey", stack.platformKey);
    project.provide("e2eRedisUrl", redis.url);
    project.provide("redisKeyNamespace", stack.config.redisKeyNamespace);
    project.provide("e2eNats", {
      url: nats.url,
      wsUrl: nats.wsUrl,
      port: nats.port,
      wsPort: nats.wsPort,
      dir: nats.dir,
    });
    project.provide("e2eClickHouse", clickhouse);
    project.provide("eventProcessorUrl", processor.url);
    project.provide("notifierUrl", notifier.url);
  } catch (error) {
    await stopAll();
    throw error;
  }
  return stopAll;
}
