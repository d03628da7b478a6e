import { createHash, randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { type Client as ConnectClient, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { serve } from "@hono/node-server";
import { Client, neonConfig, Pool } from "@neondatabase/serverless";
import { Redis } from "@upstash/redis";
import { DEFAULT_EVENT_STREAM_SETTINGS } from "../../core/audit/event-stream.js";
import { type PolicyKeys, policyKeysIn } from "../../core/distribution/policy-keys.js";
import type { ClickHouseConfig } from "../../db/clickhouse/client.js";
import { migrate } from "../../db/migrate.js";
import { configureNeonForLocalProxy } from "../../db/neon-local-proxy.js";
import { createFunctionsApp } from "../../functions/src/app.js";
import type { FunctionsConfig } from "../../functions/src/config.js";
import { createFunctionsDeps, type FunctionsDeps } from "../../functions/src/deps.js";
import { TenantService } from "../../proto/gen/fulcrum/tenant/v1/tenant_service_pb.js";
import { type PgWsProxy, startPgWsProxy } from "../../scripts/lib/pg-ws-proxy.js";
import {
  startUpstashRestServer,
  type UpstashRestServer,
} from "../../scripts/lib/upstash-rest-server.js";
import { resolveOpa } from "../../scripts/opa.js";
import { repoRoot } from "../../scripts/services/service.js";
import { startTestNats } from "./nats-server.js";
import { dropTempDatabase } from "./temp-database.js";

/**
 * The management API over the real stack, for the integration tier: a fresh database
 * with the real migrations; the functions app served over HTTP on a free port, reaching
 * PostgreSQL through the Neon driver → the project's WebSocket proxy, and Redis through
 * @upstash/redis → the project's Upstash-REST server. Callers use the generated Connect
 * clients over HTTP, as the dashboard does.
 */
export interface FunctionsStack {
  url: string;
  /** The configuration the app was built from (secrets included: tests only). */
  config: FunctionsConfig;
  /** The platform operator's key (TenantService). */
  platformKey: string;
  /** The owner connection to the test database (bypasses RLS): for assertions only. */
  owner: Pool;
  /** Redis as the edge will read it, and the stack's own key namespace in it. */
  redis: Redis;
  keys: PolicyKeys;
  deps: FunctionsDeps;
  proxy: PgWsProxy;
  /** A Connect client of `service` sending `key` as `x-api-key` (or as Bearer). */
  client<S extends DescService>(
    service: S,
    key: string | undefined,
    how?: "x-api-key" | "bearer",
  ): ConnectClient<S>;
  /** A new tenant through TenantService; returns its id and its first admin's manage key. */
  createTenant(slug?: string): Promise<{ tenantId: string; adminUserId: string; adminKey: string }>;
  stop(): Promise<void>;
}

/** Where PostgreSQL and Redis run; inside Vitest, what the integration setup provides. */
export interface StackServices {
  pgAddress: string;
  redisUrl: string;
}

/** The audit pipeline's services, when a test uses them. */
export interface StackEventServices {
  /** A test's own NATS (startTestNats()); absent: the stack starts one of its own
   * (never the machine's NATS: the audit streams have fixed names), so management
   * events are published as deployed. */
  natsUrl?: string;
  /** A test's ClickHouse database (testClickHouse().config); absent: unreachable, so
   * the EventStore query methods answer Unavailable. */
  clickhouse?: ClickHouseConfig;
}

/** Port 1 on loopback: refused at once, so "unavailable" costs no waiting. */
const NOWHERE_CLICKHOUSE: ClickHouseConfig = { url: "http://127.0.0.1:1", database: "fulcrum" };

async function providedServices(): Promise<StackServices> {
  // Imported lazily so benchmarks can use this harness outside Vitest.
  const { inject } = await import("vitest");
  return { pgAddress: inject("pgAddress"), redisUrl: inject("redisUrl") };
}

export async function startFunctionsStack(
  services?: StackServices,
  events: StackEventServices = {},
): Promise<FunctionsStack> {
  const { pgAddress: pg, redisUrl } = services ?? (await providedServices());
  const database = `fulcrum_fn_${randomBytes(4).toString("hex")}`;
  const proxy = await startPgWsProxy({ port: 0, host: "127.0.0.1", allowedTargets: [pg] });
  configureNeonForLocalProxy(neonConfig, proxy.port);
  const admin = new Pool({ connectionString: `postgres://postgres@${pg}/postgres`, max: 1 });
  await admin.query(`CREATE DATABASE ${database}`);
  const migrator = new Client(`postgres://postgres@${pg}/${database}`);
  await migrator.connect();
  try {
    await migrate(migrator, join(repoRoot, "db", "migrations"));
  } finally {
    await migrator.end();
  }

  // The test's NATS, or one of this stack's own (stopped with it).
  const nats = events.natsUrl
    ? { url: events.natsUrl, stop: async () => {} }
    : await startTestNats();
  const token = randomBytes(16).toString("hex");
  const upstash: UpstashRestServer = await startUpstashRestServer({
    port: 0,
    redisUrl,
    token,
  });
  const platformKey = `fk_${randomBytes(32).toString("base64url")}`;
  const config: FunctionsConfig = {
    environment: "test",
    databaseUrl: `postgres://fulcrum_app@${pg}/${database}`,
    databasePlatformUrl: `postgres://fulcrum_platform@${pg}/${database}`,
    pgWsProxyPort: proxy.port,
    redisRestUrl: upstash.url,
    redisRestToken: token,
    // Keys of this stack only, deleted by stop(): nothing is left in the machine's Redis.
    redisKeyNamespace: `fulcrum-test-${randomBytes(4).toString("hex")}:v1`,
    platformAdminKeySha256: createHash("sha256").update(platformKey).digest("hex"),
    opaBin: await resolveOpa(),
    opaCapabilitiesPath: undefined,
    natsUrl: nats.url,
    eventStreams: DEFAULT_EVENT_STREAM_SETTINGS,
    clickhouse: events.clickhouse ?? NOWHERE_CLICKHOUSE,
    // Test webhook receivers listen on 127.0.0.1.
    allowPrivateWebhooks: true,
  };
  const deps = createFunctionsDeps(config);
  const app = createFunctionsApp(deps, config.environment);
  const server = serve({ fetch: app.fetch, hostname: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const owner = new Pool({ connectionString: `postgres://postgres@${pg}/${database}`, max: 2 });
  const redis = new Redis({ url: upstash.url, token });

  const client: FunctionsStack["client"] = (service, key, how = "x-api-key") => {
    const auth: Interceptor = (next) => (req) => {
      if (key !== undefined) {
        if (how === "bearer") req.header.set("authorization", `Bearer ${key}`);
        else req.header.set("x-api-key", key);
      }
      return next(req);
    };
    return createClient(
      service,
      createConnectTransport({ baseUrl: url, httpVersion: "1.1", interceptors: [auth] }),
    );
  };

  let tenants = 0;
  return {
    url,
    config,
    platformKey,
    owner,
    redis,
    keys: policyKeysIn(config.redisKeyNamespace),
    deps,
    proxy,
    client,
    async createTenant(slug) {
      tenants += 1;
      const res = await client(TenantService, platformKey).createTenant({
        name: `Tenant ${tenants}`,
        slug: slug ?? `t-${randomBytes(4).toString("hex")}`,
        adminEmail: `admin${tenants}@example.com`,
        adminDisplayName: "Admin",
      });
      if (!res.tenant || !res.adminUser) throw new Error("CreateTenant returned no tenant");
      return {
        tenantId: res.tenant.tenantId,
        adminUserId: res.adminUser.userId,
        adminKey: res.secret,
      };
    },
    async stop() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await deps.close();
      await nats.stop();
      await owner.end();
      await deleteNamespace(redis, config.redisKeyNamespace);
      await upstash.close();
      // `admin` reaches PostgreSQL through the proxy too: close the proxy last.
      await dropTempDatabase(admin, database);
      await admin.end();
      await proxy.close();
    },
  };
}

/** Deletes every key of a test namespace (SCAN, so a large Redis is not blocked). */
async function deleteNamespace(redis: Redis, namespace: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, { match: `${namespace}:*`, count: 500 });
    cursor = String(next);
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== "0");
}
