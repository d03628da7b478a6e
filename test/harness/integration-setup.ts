import type { TestProject } from "vitest/node";
import { ensureClickHouse } from "../../scripts/services/clickhouse.js";
import { ensurePostgres, ensureRedis } from "../../scripts/services/ensure-services.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** host:port of the PostgreSQL the integration tier uses. */
    pgAddress: string;
    redisUrl: string;
    /** The ClickHouse HTTP interface (CLICKHOUSE_URL, else the project's chdb server). */
    clickhouseUrl: string;
  }
}

/**
 * The integration tier runs against real servers: the machine's own when they
 * answer, otherwise instances the project starts (and stops afterwards), so
 * `npm test` also works on a machine that has none running.
 */
export default async function setup(project: TestProject) {
  const postgres = await ensurePostgres();
  const redis = await ensureRedis();
  const pg = new URL(postgres.url);
  project.provide("pgAddress", `${pg.hostname}:${pg.port || "5432"}`);
  project.provide("redisUrl", redis.url);
  const clickhouse = await ensureClickHouse();
  project.provide("clickhouseUrl", clickhouse.url);
  return async () => {
    await clickhouse.stop();
    await redis.stop();
    await postgres.stop();
  };
}
