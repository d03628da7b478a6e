import { describe, expect, it } from "vitest";
import { BadEnvironmentError, describeConfig, parseNotifierConfig } from "./config.js";

const base = { DATABASE_URL: "postgres://fulcrum_app:secret@db.example.com:5432/fulcrum" };

describe("notifier config", () => {
  it("has deployable defaults", () => {
    const config = parseNotifierConfig(base);
    expect(config).toMatchObject({
      natsUrl: "nats://127.0.0.1:4222",
      http: { host: "127.0.0.1", port: 8082 },
      concurrency: 16,
      requestTimeoutMs: 10_000,
      backoffScale: 1,
      allowPrivateWebhooks: false,
      pgWsProxyPort: undefined,
    });
    expect(JSON.stringify(describeConfig(config))).not.toContain("secret");
  });

  it("reads the knobs and names a bad variable", () => {
    const config = parseNotifierConfig({
      ...base,
      NOTIFIER_BACKOFF_SCALE: "0.01",
      NOTIFIER_ALLOW_PRIVATE_WEBHOOKS: "true",
      NOTIFIER_PORT: "0",
    });
    expect(config).toMatchObject({ backoffScale: 0.01, allowPrivateWebhooks: true });
    for (const [name, value] of [
      ["DATABASE_URL", ""],
      ["DATABASE_URL", "mysql://x/y"],
      ["NOTIFIER_BACKOFF_SCALE", "0"],
      ["NOTIFIER_ALLOW_PRIVATE_WEBHOOKS", "yes"],
      ["NOTIFIER_CONCURRENCY", "0"],
      ["NATS_URL", "http://nats"],
    ] as const) {
      expect(() => parseNotifierConfig({ ...base, [name]: value }), name).toThrow(new RegExp(name));
      expect(() => parseNotifierConfig({ ...base, [name]: value })).toThrow(BadEnvironmentError);
    }
  });
});
