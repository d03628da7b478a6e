import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { ZERO_USAGE } from "../../../core/budget/limits.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { RecordUsageRequestSchema } from "../../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { countUsage } from "./budget-counting.js";
import type { BudgetRow } from "./budget-rows.js";
import { addToSummary, summaryUsage } from "./envelope-usage.js";
import { microsToNumeric, numericToMicros } from "./money.js";
import { usageInput } from "./usage-input.js";

const NOW = new Date("2026-11-24T12:00:00Z");
const req = (init: Parameters<typeof create<typeof RecordUsageRequestSchema>>[1]) =>
  create(RecordUsageRequestSchema, init);

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof FulcrumError) return error.field;
    throw error;
  }
  return undefined;
}

describe("money", () => {
  it.each([
    ["0", 0],
    ["12.3456", 12_345_600],
    ["0.000001", 1],
    ["99999999.999999", 99_999_999_999_999],
  ])("%s USD is %i micro-USD and back", (usd, micros) => {
    expect(numericToMicros(usd)).toBe(micros);
    expect(numericToMicros(microsToNumeric(micros))).toBe(micros);
  });
  it("refuses what is not a non-negative amount", () => {
    expect(() => numericToMicros("-1")).toThrow(RangeError);
    expect(() => microsToNumeric(0.5)).toThrow(RangeError);
  });
});

describe("usageInput", () => {
  it("dedupes on the reservation first, then on the idempotency key", () => {
    expect(
      usageInput(req({ reservationId: "r-1", idempotencyKey: "k", llmCalls: 1 }), NOW),
    ).toMatchObject({
      dedupeKey: "res:r-1",
    });
    expect(usageInput(req({ idempotencyKey: "k", llmCalls: 1 }), NOW).dedupeKey).toBe("key:k");
    expect(usageInput(req({ llmCalls: 1 }), NOW).dedupeKey).toBeUndefined();
  });
  it("keeps a given cost in micro-USD, rounded up", () => {
    expect(usageInput(req({ costUsd: 0.0075 }), NOW).costMicros).toBe(7500);
    expect(usageInput(req({ costUsd: 0.0000015 }), NOW).costMicros).toBe(2);
  });
  it("adds up execution time to the millisecond", () => {
    const d = create(DurationSchema, { seconds: 2n, nanos: 500_000_001 });
    expect(usageInput(req({ executionTime: d }), NOW).executionMs).toBe(2501);
  });
  it.each([
    ["input_tokens", { inputTokens: -1n, modelId: "m" }],
    ["output_tokens", { outputTokens: 1_000_000_001n, modelId: "m" }],
    ["cost_usd", { costUsd: Number.NaN }],
    ["cost_usd", { costUsd: Number.POSITIVE_INFINITY }],
    ["model_id", { inputTokens: 5n }],
    ["input_tokens", {}],
    ["reservation_id", { reservationId: "a:b", llmCalls: 1 }],
    [
      "occurred_at",
      { llmCalls: 1, occurredAt: timestampFromDate(new Date(NOW.getTime() + 120_000)) },
    ],
    [
      "occurred_at",
      { llmCalls: 1, occurredAt: timestampFromDate(new Date(NOW.getTime() - 8 * 86_400_000)) },
    ],
  ] as const)("names %s for a bad request", (field, init) => {
    expect(fieldOf(() => usageInput(req(init), NOW))).toBe(field);
  });
  it("tolerates a client clock a little ahead", () => {
    const at = new Date(NOW.getTime() + 30_000);
    expect(
      usageInput(req({ llmCalls: 1, occurredAt: timestampFromDate(at) }), NOW).occurredAt,
    ).toEqual(at);
  });
});

function row(over: Partial<BudgetRow> = {}): BudgetRow {
  return {
    id: "b",
    name: "b",
    workflowId: null,
    envelopeId: null,
    period: "HOURLY",
    periodSeconds: null,
    createdAtMs: 0,
    periodStartMs: Date.UTC(2026, 10, 24, 12),
    limits: { tokens: 1000 },
    thresholds: [],
    status: "OK",
    hardLimit: true,
    used: { ...ZERO_USAGE },
    ...over,
  };
}
const usage = (tokens: number, executionMs = 0) => ({
  usage: {
    tokens,
    inputTokens: tokens,
    outputTokens: 0,
    costMicros: 0,
    llmCalls: 0,
    toolCalls: 0,
    executionMs,
  },
});
const hour = { startMs: Date.UTC(2026, 10, 24, 12), endMs: Date.UTC(2026, 10, 24, 13) };

describe("countUsage", () => {
  it("signals each threshold once, ascending, and marks it notified", () => {
    const first = countUsage(row(), hour, usage(1200), NOW);
    expect(first.signals).toEqual([
      { kind: "threshold", percent: 80, exceeded: false },
      { kind: "threshold", percent: 100, exceeded: true },
    ]);
    expect(first.state).toBe("EXCEEDED");
    const again = countUsage(first.row, hour, usage(10), NOW);
    expect(again.signals).toEqual([]);
    expect(again.row.used.tokens).toBe(1210);
  });
  it("rolls an earlier period over: usage from zero, thresholds cleared, a reset signalled", () => {
    const old = countUsage(row({ periodStartMs: hour.startMs - 3_600_000 }), hour, usage(900), NOW);
    const before = row({
      periodStartMs: hour.startMs - 3_600_000,
      used: { ...row().used, tokens: 5000 },
      thresholds: [{ percent: 80, notified: true, notified_at: "x" }],
    });
    const counted = countUsage(before, hour, usage(100), NOW);
    expect(counted.signals).toEqual([{ kind: "reset", previousStartMs: hour.startMs - 3_600_000 }]);
    expect(counted.row.used.tokens).toBe(100);
    expect(counted.row.periodStartMs).toBe(hour.startMs);
    expect(counted.row.thresholds).toEqual([{ percent: 80, notified: false, notified_at: null }]);
    expect(old.signals.map((s) => s.kind)).toEqual(["reset", "threshold"]);
  });
  it("counts execution time against a max_execution_time limit", () => {
    const counted = countUsage(
      row({ limits: { executionMs: 60_000 } }),
      hour,
      usage(0, 60_000),
      NOW,
    );
    expect(counted.row.used.executionMs).toBe(60_000);
    expect(counted.percent).toBe(100);
    expect(counted.state).toBe("EXCEEDED");
  });
  it("keeps a suspended budget suspended", () => {
    expect(countUsage(row({ status: "SUSPENDED" }), hour, usage(1), NOW).state).toBe("SUSPENDED");
  });
});

describe("envelope summaries", () => {
  it("adds calls up per model and in total", () => {
    const call = {
      usage: {
        tokens: 30,
        inputTokens: 10,
        outputTokens: 20,
        costMicros: 7,
        llmCalls: 1,
        toolCalls: 0,
        executionMs: 5,
      },
      modelId: "gpt-4o",
      at: NOW,
    };
    const twice = addToSummary(addToSummary({}, call), call);
    expect(summaryUsage(twice)).toEqual({
      tokens: 60,
      inputTokens: 20,
      outputTokens: 40,
      costMicros: 14,
      llmCalls: 2,
      toolCalls: 0,
      executionMs: 10,
    });
    expect(twice.execution_ms).toBe(10);
    expect(twice.model_costs).toEqual([
      { model_id: "gpt-4o", input_tokens: 20, output_tokens: 40, cost_micros: 14, call_count: 2 },
    ]);
  });
});
