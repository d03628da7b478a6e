import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { freePort } from "../../scripts/lib/ports.js";
import { startWranglerDev } from "../../scripts/lib/wrangler-dev.js";
import { ensurePostgres, ensureRedis } from "../../scripts/services/ensure-services.js";
import { repoRoot } from "../../scripts/services/service.js";
import { startFunctionsStack } from "./functions-stack.js";

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
  }
}

/**
 * The whole local stack once for the e2e tier, on free ports: PostgreSQL (a fresh
 * database), a Redis of this tier's own (so a test may stop it), the management API
 * (functions) and the edge Worker under `wrangler dev`, both reaching that Redis
 * through the project's Upstash-REST server with one key namespace.
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
    const pg = new URL(postgres.url);
    const stack = await startFunctionsStack({
      pgAddress: `${pg.hostname}:${pg.port || "5432"}`,
      redisUrl: redis.url,
    });
    stops.push(stack.stop);

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
        "",
      ].join("\n"),
      { mode: 0o600 },
    );
    const worker = await startWranglerDev(await freePort(), { envFile });
    stops.push(worker.stop);

    project.provide("edgeUrl", worker.url);
    project.provide("functionsUrl", stack.url);
    project.provide("platformKey", stack.platformKey);
    project.provide("e2eRedisUrl", redis.url);
    project.provide("redisKeyNamespace", stack.config.redisKeyNamespace);
  } catch (error) {
    await stopAll();
    throw error;
  }
  return stopAll;
}
