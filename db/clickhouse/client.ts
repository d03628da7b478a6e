import { type ClickHouseClient, createClient } from "@clickhouse/client";

export type { ClickHouseClient } from "@clickhouse/client";

/** Where the audit events live; parsed from CLICKHOUSE_* at each deployable's entry. */
export interface ClickHouseConfig {
  /** http(s)://host:port of the ClickHouse HTTP interface. */
  url: string;
  username?: string;
  password?: string;
  database: string;
}

/**
 * A ClickHouse client for `config.database`. Keep-alive sockets are reused between
 * batches (the processor inserts every ~200 ms); a request gets 30 s, long enough for a
 * 5,000-row insert on a busy server yet short of JetStream's redelivery wait, so a hung
 * insert fails and is retried instead of blocking the consumer.
 *
 * @example
 * const clickhouse = createClickHouse({ url: "http://127.0.0.1:8123", database: "fulcrum" });
 * const rows = await clickhouse.query({
 *   query: "SELECT count() AS n FROM events FINAL WHERE tenant_id = {tenant:String}",
 *   query_params: { tenant: "tenant_1" },
 *   format: "JSONEachRow",
 * });
 * await clickhouse.close();
 */
export function createClickHouse(config: ClickHouseConfig): ClickHouseClient {
  return createClient({
    url: config.url,
    username: config.username ?? "default",
    password: config.password ?? "",
    database: config.database,
    request_timeout: 30_000,
    keep_alive: { enabled: true },
    application: "fulcrum",
  });
}
