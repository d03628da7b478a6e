import { describe, expect, it } from "vitest";
import { BadEnvironmentError, type Env, parseEdgeConfig } from "../src/config.js";

/** The issue-6 settings of parseEdgeConfig: defaults, and clear errors for bad values. */
const env = (extra: Partial<Env> = {}): Env => ({
  UPSTASH_REDIS_REST_URL: "http://127.0.0.1:1",
  UPSTASH_REDIS_REST_TOKEN: "token",
  NATS_WS_URL: "ws://127.0.0.1:4280",
  LOADER: {} as WorkerLoader,
  AUDIT_BUFFER: {} as Env["AUDIT_BUFFER"],
  ...extra,
});

describe("budget and approval settings", () => {
  it("default to 300 s reservations and 3600 s approvals", () => {
    const config = parseEdgeConfig(env());
    expect(config.budgetReservationTtlMs).toBe(300_000);
    expect(config.approvalTtlMs).toBe(3_600_000);
  });

  it("take whole seconds", () => {
    const config = parseEdgeConfig(
      env({ BUDGET_RESERVATION_TTL_SECONDS: "60", APPROVAL_TTL_SECONDS: " 86400 " }),
    );
    expect(config.budgetReservationTtlMs).toBe(60_000);
    expect(config.approvalTtlMs).toBe(86_400_000);
  });

  it.each([
    ["BUDGET_RESERVATION_TTL_SECONDS", "0", "1–86400"],
    ["BUDGET_RESERVATION_TTL_SECONDS", "1.5", "1–86400"],
    ["BUDGET_RESERVATION_TTL_SECONDS", "86401", "1–86400"],
    ["APPROVAL_TTL_SECONDS", "1h", "1–604800"],
    ["APPROVAL_TTL_SECONDS", "-5", "1–604800"],
  ] as const)("reject %s=%s", (name, value, range) => {
    expect(() => parseEdgeConfig(env({ [name]: value }))).toThrow(BadEnvironmentError);
    expect(() => parseEdgeConfig(env({ [name]: value }))).toThrow(
      `${name} must be a whole number of seconds, ${range}`,
    );
  });
});
