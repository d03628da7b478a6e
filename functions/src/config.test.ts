import { describe, expect, it } from "vitest";
import { BadEnvironmentError, describeConfig, parseFunctionsConfig } from "./config.js";

const valid = {
  DATABASE_URL: "postgres://fulcrum_app:s3cret@db.example.com:5432/fulcrum",
  DATABASE_PLATFORM_URL: "postgres://fulcrum_platform:0wner@db.example.com:5432/fulcrum",
  UPSTASH_REDIS_REST_URL: "https://redis.example.com",
  UPSTASH_REDIS_REST_TOKEN: "tok",
  OPA_BIN: "/var/task/bin/opa",
  PLATFORM_ADMIN_KEY_SHA256: "A".repeat(64),
};

describe("parseFunctionsConfig", () => {
  it("parses a complete environment", () => {
    const config = parseFunctionsConfig({
      ...valid,
      PG_WS_PROXY_PORT: "5488",
      FULCRUM_ENV: "staging",
    });
    expect(config.environment).toBe("staging");
    expect(config.pgWsProxyPort).toBe(5488);
    expect(config.platformAdminKeySha256).toBe("a".repeat(64));
    expect(config.databasePlatformUrl).toBe(valid.DATABASE_PLATFORM_URL);
    expect(config.opaCapabilitiesPath).toBeUndefined();
    expect(config.redisKeyNamespace).toBe("fulcrum:v1");
    expect(
      parseFunctionsConfig({ ...valid, REDIS_KEY_NAMESPACE: "staging:v1" }).redisKeyNamespace,
    ).toBe("staging:v1");
  });

  it.each([
    ["DATABASE_URL", { DATABASE_URL: undefined }, "DATABASE_URL is required"],
    ["DATABASE_URL", { DATABASE_URL: "mysql://x" }, "DATABASE_URL must be a postgres:// URL"],
    [
      "DATABASE_PLATFORM_URL",
      { DATABASE_PLATFORM_URL: "nope" },
      "DATABASE_PLATFORM_URL is not a URL",
    ],
    ["PG_WS_PROXY_PORT", { PG_WS_PROXY_PORT: "80a" }, "PG_WS_PROXY_PORT must be a port number"],
    ["UPSTASH_REDIS_REST_URL", { UPSTASH_REDIS_REST_URL: "redis://x" }, "must be an http(s) URL"],
    [
      "UPSTASH_REDIS_REST_TOKEN",
      { UPSTASH_REDIS_REST_TOKEN: " " },
      "UPSTASH_REDIS_REST_TOKEN is required",
    ],
    ["PLATFORM_ADMIN_KEY_SHA256", { PLATFORM_ADMIN_KEY_SHA256: "abc" }, "64 hex characters"],
    ["OPA_BIN", { OPA_BIN: undefined }, "OPA_BIN is required"],
    ["REDIS_KEY_NAMESPACE", { REDIS_KEY_NAMESPACE: "a b" }, "REDIS_KEY_NAMESPACE must be"],
    ["NATS_URL", { NATS_URL: "http://x:4222" }, "NATS_URL must be a nats: or tls:// URL"],
    ["CLICKHOUSE_URL", { CLICKHOUSE_URL: "tcp://x" }, "CLICKHOUSE_URL must be"],
    ["CLICKHOUSE_DATABASE", { CLICKHOUSE_DATABASE: "a-b" }, "CLICKHOUSE_DATABASE must be"],
    ["EVENTS_STREAM_MAX_BYTES", { EVENTS_STREAM_MAX_BYTES: "-1" }, "EVENTS_STREAM_MAX_BYTES"],
  ])("refuses a bad %s", (_name, override, message) => {
    expect(() => parseFunctionsConfig({ ...valid, ...override })).toThrow(BadEnvironmentError);
    expect(() => parseFunctionsConfig({ ...valid, ...override })).toThrow(message);
  });

  it("leaves the platform connection and TenantService off when not configured", () => {
    const config = parseFunctionsConfig({
      ...valid,
      DATABASE_PLATFORM_URL: undefined,
      PLATFORM_ADMIN_KEY_SHA256: undefined,
      // The old name of the variable (an owner connection) is not read any more.
      DATABASE_ADMIN_URL: "postgres://postgres@db.example.com:5432/fulcrum",
    });
    expect(config.databasePlatformUrl).toBeUndefined();
    expect(JSON.stringify(config)).not.toContain("postgres@");
    expect(describeConfig(config).tenantService).toBe("disabled");
  });

  it("defaults the audit pipeline's services to the local ones", () => {
    const config = parseFunctionsConfig(valid);
    expect(config.natsUrl).toBe("nats://127.0.0.1:4222");
    expect(config.clickhouse).toEqual({ url: "http://127.0.0.1:8123", database: "fulcrum" });
    expect(config.eventStreams.duplicateWindowMs).toBe(120_000);
    const set = parseFunctionsConfig({
      ...valid,
      NATS_URL: "nats://n.example.com:4222",
      CLICKHOUSE_URL: "https://ch.example.com:8443",
      CLICKHOUSE_USER: "fulcrum",
      CLICKHOUSE_PASSWORD: "chs3cret",
      CLICKHOUSE_DATABASE: "audit",
      EVENTS_DUPLICATE_WINDOW_SECONDS: "300",
    });
    expect(set.clickhouse).toEqual({
      url: "https://ch.example.com:8443",
      username: "fulcrum",
      password: "chs3cret",
      database: "audit",
    });
    expect(set.eventStreams.duplicateWindowMs).toBe(300_000);
    expect(JSON.stringify(describeConfig(set))).not.toContain("chs3cret");
  });

  it("describes the configuration without credentials", () => {
    const text = JSON.stringify(describeConfig(parseFunctionsConfig(valid)));
    expect(text).toContain("db.example.com:5432");
    expect(text).not.toContain("s3cret");
    expect(text).not.toContain("0wner");
    expect(text).not.toContain("tok");
  });
});
