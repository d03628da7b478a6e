import { ClickHouseError, createClient } from "@clickhouse/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClickHouse } from "../../db/clickhouse/client.js";
import { type TestClickHouse, testClickHouse } from "../harness/clickhouse.js";

// The HTTP interface as @clickhouse/client uses it, against the tier's ClickHouse (the
// project's chdb server unless CLICKHOUSE_URL names a real one).
describe("ClickHouse HTTP interface", () => {
  let ch: TestClickHouse;
  beforeAll(async () => {
    ch = await testClickHouse();
    await ch.client.command({
      query: `CREATE TABLE kinds (
        id UInt32, at DateTime64(3, 'UTC'), kind LowCardinality(String), tags Map(String, String)
      ) ENGINE = MergeTree ORDER BY id`,
    });
  });
  afterAll(() => ch?.drop());

  it("answers ping", async () => {
    expect(await ch.client.ping()).toEqual({ success: true });
  });

  it("round-trips DateTime64, LowCardinality and Map", async () => {
    const row = {
      id: 1,
      at: "2026-03-04 05:06:07.891",
      kind: "decision",
      tags: { a: "1", "b c": "2" },
    };
    await ch.client.insert({ table: "kinds", values: [row], format: "JSONEachRow" });
    const result = await ch.client.query({
      query: "SELECT * FROM kinds WHERE id = 1",
      format: "JSONEachRow",
    });
    expect(await result.json()).toEqual([row]);
  });

  it("binds query parameters unchanged", async () => {
    const tricky =
      "it's a \\ back\\\\slash,\ttab\nnew line\r\0 — ünï 🚀 {x:String} '; DROP TABLE kinds; --";
    const result = await ch.client.query({
      query: "SELECT {s:String} AS s, {list:Array(String)} AS list, {n:UInt64} AS n",
      query_params: { s: tricky, list: [tricky, "b'"], n: 42 },
      format: "JSONEachRow",
    });
    // UInt64 comes back quoted, as a real server sends it.
    expect(await result.json()).toEqual([{ s: tricky, list: [tricky, "b'"], n: "42" }]);
    // A parameter of one query is not left behind for the next.
    await expect(
      ch.client.query({ query: "SELECT {s:String}", format: "JSONEachRow" }),
    ).rejects.toMatchObject({ type: "UNKNOWN_QUERY_PARAMETER" });
  });

  it("keeps each request's database and settings to itself", async () => {
    const other = createClickHouse({ ...ch.config, database: "system" });
    try {
      const scoped = await other.query({
        query: "SELECT currentDatabase() AS db, getSetting('max_block_size') AS size",
        clickhouse_settings: { max_block_size: "1234" },
        format: "JSONEachRow",
      });
      expect(await scoped.json()).toEqual([{ db: "system", size: 1234 }]);
      const after = await ch.client.query({
        query: "SELECT currentDatabase() AS db, getSetting('max_block_size') AS size",
        format: "JSONEachRow",
      });
      const [row] = await after.json<{ db: string; size: number }>();
      expect(row?.db).toBe(ch.config.database);
      expect(row?.size).not.toBe(1234);
    } finally {
      await other.close();
    }
  });

  it("reports an SQL error as ClickHouseError with its code", async () => {
    const error = await ch.client
      .query({ query: "SELECT * FROM no_such_table" })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ClickHouseError);
    expect(error).toMatchObject({ code: "60", type: "UNKNOWN_TABLE" });
  });

  it("accepts gzip-compressed inserts", async () => {
    const client = createClient({
      url: ch.config.url,
      database: ch.config.database,
      compression: { request: true, response: true },
    });
    try {
      const values = Array.from({ length: 2000 }, (_, i) => ({
        id: 1000 + i,
        at: "2026-01-01 00:00:00.000",
        kind: i % 2 ? "odd" : "even",
        tags: { i: String(i) },
      }));
      await client.insert({ table: "kinds", values, format: "JSONEachRow" });
      const result = await client.query({
        query: "SELECT count() AS n, uniqExact(kind) AS kinds FROM kinds WHERE id >= 1000",
        format: "JSONEachRow",
      });
      expect(await result.json()).toEqual([{ n: "2000", kinds: "2" }]);
    } finally {
      await client.close();
    }
  });
});
