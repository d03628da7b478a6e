import { randomBytes } from "node:crypto";
import { inject } from "vitest";
import {
  type ClickHouseClient,
  type ClickHouseConfig,
  createClickHouse,
} from "../../db/clickhouse/client.js";
import { migrateClickHouse } from "../../db/clickhouse/migrate.js";

export interface TestClickHouse {
  config: ClickHouseConfig;
  /** A client on `config.database`; closed by drop(). */
  client: ClickHouseClient;
  /** Drops the database. */
  drop(): Promise<void>;
}

/**
 * A fresh database `fulcrum_test_<random>` with the real migrations on the integration
 * tier's ClickHouse (scripts/services/clickhouse.ts, provided by integration-setup.ts).
 *
 * @example
 * const ch = await testClickHouse();
 * afterAll(() => ch.drop());
 */
export async function testClickHouse(): Promise<TestClickHouse> {
  const config: ClickHouseConfig = {
    url: inject("clickhouseUrl"),
    database: `fulcrum_test_${randomBytes(4).toString("hex")}`,
  };
  await migrateClickHouse(config);
  const client = createClickHouse(config);
  return {
    config,
    client,
    drop: async () => {
      await client.close();
      const server = createClickHouse({ ...config, database: "default" });
      await server.command({ query: `DROP DATABASE IF EXISTS ${config.database}` });
      await server.close();
    },
  };
}
