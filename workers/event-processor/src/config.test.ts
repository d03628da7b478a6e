import { describe, expect, it } from "vitest";
import { BadEnvironmentError, describeConfig, parseEventProcessorConfig } from "./config.js";

const DB = "postgres://fulcrum_app:s3cret@db.example:5432/fulcrum";

describe("parseEventProcessorConfig", () => {
  it("applies the documented defaults", () => {
    const config = parseEventProcessorConfig({ DATABASE_URL: DB });
    expect(config).toMatchObject({
      natsUrl: "nats://127.0.0.1:4222",
      clickhouse: { url: "http://127.0.0.1:8123", database: "fulcrum" },
      databaseUrl: DB,
      pgWsProxyPort: undefined,
      http: { host: "127.0.0.1", port: 8081 },
      batchMaxEvents: 10_000,
      batchMaxWaitMs: 200,
      maxDeliver: 5,
      ackWaitMs: 10_000,
      streams: { duplicateWindowMs: 120_000 },
    });
    expect(config.clickhouse).not.toHaveProperty("password");
  });

  it("reads every variable", () => {
    const config = parseEventProcessorConfig({
      DATABASE_URL: DB,
      NATS_URL: "nats://nats:4222",
      CLICKHOUSE_URL: "https://ch.example:8443",
      CLICKHOUSE_USER: "writer",
      CLICKHOUSE_PASSWORD: "pw",
      CLICKHOUSE_DATABASE: "audit_1",
      PG_WS_PROXY_PORT: "5433",
      EVENT_PROCESSOR_HOST: "0.0.0.0",
      EVENT_PROCESSOR_PORT: "9000",
      BATCH_MAX_EVENTS: "100",
      BATCH_MAX_WAIT_MS: "50",
      MAX_DELIVER: "3",
      ACK_WAIT_MS: "4000",
      EVENTS_DUPLICATE_WINDOW_SECONDS: "1",
    });
    expect(config).toMatchObject({
      natsUrl: "nats://nats:4222",
      clickhouse: {
        url: "https://ch.example:8443",
        username: "writer",
        password: "pw",
        database: "audit_1",
      },
      pgWsProxyPort: 5433,
      http: { host: "0.0.0.0", port: 9000 },
      batchMaxEvents: 100,
      batchMaxWaitMs: 50,
      maxDeliver: 3,
      ackWaitMs: 4000,
      streams: { duplicateWindowMs: 1000 },
    });
  });

  it.each([
    [{}, /DATABASE_URL is required/],
    [{ DATABASE_URL: "mysql://x" }, /DATABASE_URL must be a postgres/],
    [{ DATABASE_URL: DB, NATS_URL: "http://x" }, /NATS_URL/],
    [{ DATABASE_URL: DB, CLICKHOUSE_URL: "not a url" }, /CLICKHOUSE_URL is not a URL/],
    [{ DATABASE_URL: DB, CLICKHOUSE_DATABASE: "a;drop" }, /CLICKHOUSE_DATABASE/],
    [{ DATABASE_URL: DB, BATCH_MAX_EVENTS: "0" }, /BATCH_MAX_EVENTS must be an integer/],
    [{ DATABASE_URL: DB, BATCH_MAX_WAIT_MS: "1.5" }, /BATCH_MAX_WAIT_MS/],
    [{ DATABASE_URL: DB, MAX_DELIVER: "-1" }, /MAX_DELIVER/],
    [{ DATABASE_URL: DB, EVENT_PROCESSOR_PORT: "70000" }, /EVENT_PROCESSOR_PORT/],
    [{ DATABASE_URL: DB, PG_WS_PROXY_PORT: "x" }, /PG_WS_PROXY_PORT/],
    [{ DATABASE_URL: DB, EVENTS_STREAM_MAX_BYTES: "-5" }, /EVENTS_STREAM_MAX_BYTES/],
  ])("rejects %j naming the variable", (env, message) => {
    expect(() => parseEventProcessorConfig(env)).toThrow(BadEnvironmentError);
    expect(() => parseEventProcessorConfig(env)).toThrow(message);
  });

  it("describes the configuration without credentials", () => {
    const config = parseEventProcessorConfig({
      DATABASE_URL: DB,
      CLICKHOUSE_URL: "http://user:chpw@ch:8123",
      CLICKHOUSE_PASSWORD: "chpw2",
    });
    const text = JSON.stringify(describeConfig(config));
    expect(text).toContain("db.example:5432");
    expect(text).not.toMatch(/s3cret|chpw/);
  });
});
