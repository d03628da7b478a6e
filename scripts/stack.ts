/**
 * The local stack (`npm run stack`): starts every Fulcrum component on this machine,
 * waits until each is healthy, prints where it listens, and stops them all on Ctrl-C.
 * Fully offline. Each service is reused when it already runs, started otherwise.
 *
 * - PostgreSQL (database `fulcrum`, migrated) and Redis;
 * - the WebSocket proxy the Neon driver reaches PostgreSQL through, and the Upstash-REST
 *   server @upstash/redis reaches Redis through (the deployed services speak these
 *   protocols natively);
 * - the management API (functions) on 127.0.0.1:8080, with a `demo` tenant whose
 *   `demo-guardrails` policy is active and which has a check key (scripts/lib/demo-tenant.ts);
 * - the edge Worker under `wrangler dev` on 127.0.0.1:8787;
 * - the audit pipeline: NATS with JetStream (the stack's own on 127.0.0.1:4223, with the
 *   WebSocket listener the edge publishes through on 4280 and the monitoring port the
 *   runbook curls on 8222), ClickHouse (CLICKHOUSE_URL, else the project's chdb server
 *   on 8123, migrated), the event processor on 127.0.0.1:8081 and the webhook notifier on
 *   127.0.0.1:8082 (webhooks to 127.0.0.1 allowed: local receivers).
 *
 * `--edge-only` starts Redis, NATS and the edge alone (`npm run dev:edge`): it serves
 * what an earlier full run published; its decision events wait in JetStream.
 */
import { createHash } from "node:crypto";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { migrateClickHouse } from "../db/clickhouse/migrate.js";
import { ensureDemoTenant } from "./lib/demo-tenant.js";
import { startEventProcessorServer } from "./lib/event-processor-server.js";
import { startFunctionsServer } from "./lib/functions-server.js";
import {
  LOCAL_CREDENTIALS_FILE,
  type LocalCredentials,
  loadLocalCredentials,
} from "./lib/local-credentials.js";
import { startNotifierServer } from "./lib/notifier-server.js";
import { startPgWsProxy } from "./lib/pg-ws-proxy.js";
import { startUpstashRestServer } from "./lib/upstash-rest-server.js";
import { startWranglerDev } from "./lib/wrangler-dev.js";
import { resolveOpa } from "./opa.js";
import { ensureClickHouse } from "./services/clickhouse.js";
import {
  type EnsuredService,
  ensureNats,
  ensurePostgres,
  ensureRedis,
} from "./services/ensure-services.js";
import { run } from "./services/process.js";
import { repoRoot } from "./services/service.js";

const port = (name: string, fallback: number) => Number(process.env[name] ?? fallback);
const EDGE_PORT = port("FULCRUM_EDGE_PORT", 8787);
const FUNCTIONS_PORT = port("FULCRUM_FUNCTIONS_PORT", 8080);
const PG_PROXY_PORT = port("FULCRUM_PG_PROXY_PORT", 5488);
const REDIS_REST_PORT = port("FULCRUM_REDIS_REST_PORT", 8079);
const NATS_PORT = port("FULCRUM_STACK_NATS_PORT", 4223);
const NATS_WS_PORT = port("FULCRUM_STACK_NATS_WS_PORT", 4280);
const NATS_MONITOR_PORT = port("FULCRUM_STACK_NATS_MONITOR_PORT", 8222);
const EVENT_PROCESSOR_PORT = port("EVENT_PROCESSOR_PORT", 8081);
const NOTIFIER_PORT = port("NOTIFIER_PORT", 8082);
const CLICKHOUSE_DATABASE = process.env.CLICKHOUSE_DATABASE ?? "fulcrum";

type Stop = () => Promise<void>;
const stops: Stop[] = [];

async function main(edgeOnly: boolean) {
  console.log("starting the Fulcrum local stack…");
  const credentials = loadLocalCredentials();
  const redis = await ensureRedis();
  stops.push(redis.stop);
  const upstash = await startUpstashRestServer({
    port: REDIS_REST_PORT,
    redisUrl: redis.url,
    token: credentials.redisRestToken,
  });
  stops.unshift(upstash.close);
  const rows: Record<string, string>[] = [
    { component: "Redis", url: redis.url, health: redis.detail },
    { component: "Upstash REST server (@upstash/redis)", url: upstash.url, health: "" },
  ];
  const nats = await ensureAuditNats();
  stops.push(nats.stop);
  const natsWsUrl = nats.wsUrl ?? `ws://127.0.0.1:${NATS_WS_PORT}`;
  rows.push({
    component: "NATS JetStream (audit events)",
    url: `${nats.url} (ws ${natsWsUrl})`,
    health: `http://127.0.0.1:${NATS_MONITOR_PORT}/healthz`,
  });
  if (!edgeOnly) rows.push(...(await startControlPlane(upstash.url, credentials, nats.url)));
  const edge = await startWranglerDev(EDGE_PORT, {
    logFile: process.stdout,
    // Kept across runs: decision events buffered while NATS was away are not lost.
    persistTo: join(repoRoot, ".fulcrum", "wrangler-state"),
    envFile: writeEdgeEnv(upstash.url, credentials.redisRestToken, natsWsUrl),
  });
  stops.unshift(edge.stop);
  rows.push({ component: "edge (wrangler dev)", url: edge.url, health: `${edge.url}/readyz` });

  console.log("\nFulcrum local stack is up:");
  console.table(rows);
  const { demo } = loadLocalCredentials();
  if (demo?.checkKey) {
    console.log(
      `try: curl -s ${edge.url}/fulcrum.policy.v1.PolicyService/CheckPolicy -H 'content-type: application/json' -H "x-api-key: ${demo.checkKey}" -d '{"context":{"workflow_id":"demo","tool_names":["shell_exec"]}}'`,
    );
  }
  if (!edgeOnly) {
    console.log(
      `     curl -s http://127.0.0.1:${FUNCTIONS_PORT}/fulcrum.policy.v1.PolicyService/ListPolicies -H 'content-type: application/json' -H "x-api-key: ${demo?.adminKey ?? "<key>"}" -d '{}'`,
    );
    console.log(
      `     curl -s http://127.0.0.1:${FUNCTIONS_PORT}/fulcrum.eventstore.v1.EventStoreService/QueryEvents -H 'content-type: application/json' -H "x-api-key: ${demo?.adminKey ?? "<key>"}" -d '{"limit":5}'`,
    );
  }
  console.log(`credentials (platform key, demo tenant keys): ${LOCAL_CREDENTIALS_FILE}`);
  console.log("Ctrl-C stops everything.");
}

/**
 * The edge's secrets as a dotenv file for `wrangler dev --env-file` (git-ignored, mode
 * 0600), so the token is never on a command line.
 */
function writeEdgeEnv(redisRestUrl: string, token: string, natsWsUrl: string): string {
  const file = join(dirname(LOCAL_CREDENTIALS_FILE), "edge.env");
  writeFileSync(
    file,
    `UPSTASH_REDIS_REST_URL=${redisRestUrl}\nUPSTASH_REDIS_REST_TOKEN=${token}\nNATS_WS_URL=${natsWsUrl}\n`,
    { mode: 0o600 },
  );
  return file;
}

/**
 * The stack's NATS: FULCRUM_NATS_URL + FULCRUM_NATS_WS_URL when both are given, else one
 * of the stack's own (data kept in .tmp/services/nats-stack across runs). Not the
 * machine's default server: the edge needs a WebSocket listener and the runbook the
 * monitoring port, which a plain `nats-server -js` lacks.
 */
async function ensureAuditNats(): Promise<EnsuredService> {
  const url = process.env.FULCRUM_NATS_URL;
  const wsUrl = process.env.FULCRUM_NATS_WS_URL;
  if (url && wsUrl) return { ...(await ensureNats({ url })), wsUrl };
  return ensureNats({
    url: `nats://127.0.0.1:${NATS_PORT}`,
    wsPort: NATS_WS_PORT,
    monitorPort: NATS_MONITOR_PORT,
    dir: join(repoRoot, ".tmp", "services", "nats-stack"),
  });
}

async function startControlPlane(
  redisRestUrl: string,
  credentials: LocalCredentials,
  natsUrl: string,
): Promise<Record<string, string>[]> {
  const clickhouse = await ensureClickHouse();
  stops.push(clickhouse.stop);
  const clickhouseConfig = { url: clickhouse.url, database: CLICKHOUSE_DATABASE };
  await migrateClickHouse(clickhouseConfig);

  const postgres = await ensurePostgres();
  stops.push(postgres.stop);
  const pg = new URL(postgres.url);
  const pgAddress = `${pg.hostname}:${pg.port || "5432"}`;
  const ownerUrl = `postgres://postgres@${pgAddress}/fulcrum`;

  const migrated = await run(
    process.execPath,
    [join(repoRoot, "node_modules/tsx/dist/cli.mjs"), join(repoRoot, "scripts/db.ts"), "migrate"],
    { env: { ...process.env, DATABASE_URL: ownerUrl } },
  );
  if (migrated.code !== 0) throw new Error(`migrations failed:\n${migrated.output}`);

  const proxy = await startPgWsProxy({ port: PG_PROXY_PORT, allowedTargets: [pgAddress] });
  stops.unshift(proxy.close);

  const functions = await startFunctionsServer(
    FUNCTIONS_PORT,
    {
      FULCRUM_ENV: "local",
      // Local webhook receivers listen on 127.0.0.1 (refused in deployments).
      FULCRUM_ALLOW_PRIVATE_WEBHOOKS: "true",
      DATABASE_URL: `postgres://fulcrum_app@${pgAddress}/fulcrum`,
      DATABASE_PLATFORM_URL: `postgres://fulcrum_platform@${pgAddress}/fulcrum`,
      PG_WS_PROXY_PORT: String(proxy.port),
      UPSTASH_REDIS_REST_URL: redisRestUrl,
      UPSTASH_REDIS_REST_TOKEN: credentials.redisRestToken,
      PLATFORM_ADMIN_KEY_SHA256: createHash("sha256").update(credentials.platformKey).digest("hex"),
      OPA_BIN: await resolveOpa(),
      NATS_URL: natsUrl,
      CLICKHOUSE_URL: clickhouse.url,
      CLICKHOUSE_DATABASE,
    },
    process.stdout,
  );
  stops.unshift(functions.stop);
  await ensureDemoTenant(functions.url, loadLocalCredentials());

  const processor = await startEventProcessorServer(
    EVENT_PROCESSOR_PORT,
    {
      NATS_URL: natsUrl,
      CLICKHOUSE_URL: clickhouse.url,
      CLICKHOUSE_DATABASE,
      DATABASE_URL: `postgres://fulcrum_app@${pgAddress}/fulcrum`,
      PG_WS_PROXY_PORT: String(proxy.port),
    },
    process.stdout,
  );
  stops.unshift(processor.stop);

  const notifier = await startNotifierServer(
    NOTIFIER_PORT,
    {
      NATS_URL: natsUrl,
      DATABASE_URL: `postgres://fulcrum_app@${pgAddress}/fulcrum`,
      PG_WS_PROXY_PORT: String(proxy.port),
      NOTIFIER_ALLOW_PRIVATE_WEBHOOKS: "true",
    },
    process.stdout,
  );
  stops.unshift(notifier.stop);

  return [
    { component: "PostgreSQL", url: postgres.url, health: postgres.detail },
    {
      component: "PostgreSQL WebSocket proxy (Neon driver)",
      url: `ws://127.0.0.1:${proxy.port}/v2`,
      health: "",
    },
    {
      component: "functions (management API)",
      url: functions.url,
      health: `${functions.url}/readyz`,
    },
    { component: "ClickHouse (audit store)", url: clickhouse.url, health: clickhouse.detail },
    { component: "event processor", url: processor.url, health: `${processor.url}/healthz` },
    { component: "notifier (webhooks)", url: notifier.url, health: `${notifier.url}/healthz` },
  ];
}

let stopping = false;
async function stopAll() {
  if (stopping) return;
  stopping = true;
  console.log("\nstopping…");
  for (const stop of stops) await stop().catch(() => {});
  process.exit(0);
}
process.on("SIGINT", stopAll);
process.on("SIGTERM", stopAll);

main(process.argv.includes("--edge-only")).catch(async (error) => {
  console.error(`local stack failed to start: ${(error as Error).message}`);
  for (const stop of stops) await stop().catch(() => {});
  process.exit(1);
});
