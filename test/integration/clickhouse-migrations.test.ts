import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, inject, it } from "vitest";
import { createClickHouse } from "../../db/clickhouse/client.js";
import {
  clickHouseStatus,
  migrateClickHouse,
  rollbackClickHouse,
} from "../../db/clickhouse/migrate.js";

describe("ClickHouse migrations", () => {
  const config = {
    url: inject("clickhouseUrl"),
    database: `fulcrum_test_${randomBytes(4).toString("hex")}`,
  };
  const server = createClickHouse({ ...config, database: "default" });
  afterAll(async () => {
    await server.command({ query: `DROP DATABASE IF EXISTS ${config.database}` });
    await server.close();
  });

  const table = async (name: string) => {
    const result = await server.query({
      query: `SELECT engine, partition_key, sorting_key, create_table_query
        FROM system.tables WHERE database = {db:String} AND name = {name:String}`,
      query_params: { db: config.database, name },
      format: "JSONEachRow",
    });
    return (await result.json<Record<string, string>>())[0];
  };

  it("creates the database and the events table", async () => {
    expect((await clickHouseStatus(config)).map((s) => s.state)).toEqual(["pending"]);
    const applied = await migrateClickHouse(config);
    expect(applied.map((f) => f.version)).toEqual(["0001"]);
    const events = await table("events");
    expect(events).toMatchObject({
      engine: "ReplacingMergeTree",
      partition_key: "toYYYYMM(event_time)",
      sorting_key: "tenant_id, event_time, event_id",
    });
    expect(events?.create_table_query).toMatch(
      /TTL toDateTime\(event_time\) \+ toIntervalDay\(90\)/,
    );
    const [status] = await clickHouseStatus(config);
    expect(status).toMatchObject({ version: "0001", state: "applied", description: "events" });
    expect(status?.appliedAt).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d/);
  });

  it("does nothing when run again", async () => {
    expect(await migrateClickHouse(config)).toEqual([]);
    const result = await server.query({
      query: `SELECT count() AS n FROM ${config.database}.schema_migrations`,
      format: "JSONEachRow",
    });
    expect(await result.json()).toEqual([{ n: "1" }]);
  });

  it("rolls back the newest migration", async () => {
    expect((await rollbackClickHouse(config)).map((f) => f.version)).toEqual(["0001"]);
    expect(await table("events")).toBeUndefined();
    expect((await clickHouseStatus(config)).map((s) => s.state)).toEqual(["pending"]);
    expect(await rollbackClickHouse(config)).toEqual([]);
    // And forward again.
    expect((await migrateClickHouse(config)).map((f) => f.version)).toEqual(["0001"]);
  });
});
