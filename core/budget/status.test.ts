import { describe, expect, it } from "vitest";
import { BudgetState } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import { type BudgetUsage, ZERO_USAGE } from "./limits.js";
import {
  budgetState,
  crossedThresholds,
  dimensionPercents,
  nextThreshold,
  normalizeThresholds,
  remainingOf,
  stateToProto,
  usagePercent,
} from "./status.js";

const used = (over: Partial<BudgetUsage>): BudgetUsage => ({ ...ZERO_USAGE, ...over });

describe("usage percent", () => {
  it("is the most consumed limited dimension", () => {
    const limits = { tokens: 1000, costMicros: 2_000_000 };
    expect(usagePercent(limits, used({ tokens: 500, costMicros: 1_800_000 }))).toBe(90);
    expect(usagePercent(limits, used({ tokens: 1200, costMicros: 0 }))).toBe(120);
    expect(dimensionPercents(limits, used({ tokens: 250 }))).toEqual({ tokens: 25, costMicros: 0 });
  });

  it("ignores unlimited dimensions and counts a zero limit as used up", () => {
    expect(usagePercent({}, used({ tokens: 10 ** 9 }))).toBe(0);
    expect(usagePercent({ llmCalls: 0 }, used({}))).toBe(100);
  });

  it("remaining never goes negative", () => {
    expect(remainingOf({ tokens: 100, toolCalls: 5 }, used({ tokens: 130, toolCalls: 2 }))).toEqual(
      {
        tokens: 0,
        toolCalls: 3,
      },
    );
  });
});

describe("budgetState", () => {
  const t = [80, 100];
  it.each([
    [0, "OK"],
    [79.99, "OK"],
    [80, "WARNING"],
    [94.99, "WARNING"],
    [95, "CRITICAL"],
    [99.999, "CRITICAL"],
    [100, "EXCEEDED"],
    [250, "EXCEEDED"],
  ] as const)("%s %% → %s", (percent, state) => {
    expect(budgetState(percent, t, false)).toBe(state);
  });

  it("warns from the lowest threshold, defaults when none, SUSPENDED wins", () => {
    expect(budgetState(50, [90, 50, 100], false)).toBe("WARNING");
    expect(budgetState(49, [90, 50, 100], false)).toBe("OK");
    expect(budgetState(80, [], false)).toBe("WARNING");
    expect(budgetState(0, t, true)).toBe("SUSPENDED");
    expect(budgetState(150, t, true)).toBe("SUSPENDED");
    expect(stateToProto("CRITICAL")).toBe(BudgetState.CRITICAL);
  });
});

describe("thresholds", () => {
  it("normalizes: sorted, unique, defaults", () => {
    expect(normalizeThresholds([100, 50, 80, 50])).toEqual([50, 80, 100]);
    expect(normalizeThresholds(undefined)).toEqual([80, 100]);
  });

  it("reports each threshold a change reaches, once: before < t ≤ after", () => {
    expect(crossedThresholds([80, 100], 79, 80)).toEqual([
      { percent: 80, event: "BUDGET_WARNING" },
    ]);
    expect(crossedThresholds([80, 100], 80, 99)).toEqual([]);
    expect(crossedThresholds([80, 100], 10, 130)).toEqual([
      { percent: 80, event: "BUDGET_WARNING" },
      { percent: 100, event: "BUDGET_EXCEEDED" },
    ]);
    expect(crossedThresholds([50, 120], 99, 121)).toEqual([
      { percent: 120, event: "BUDGET_EXCEEDED" },
    ]);
    // Usage going down (a rollover) crosses nothing.
    expect(crossedThresholds([80, 100], 130, 0)).toEqual([]);
  });

  it("names the next threshold not reached", () => {
    expect(nextThreshold([80, 100], 0)).toBe(80);
    expect(nextThreshold([80, 100], 80)).toBe(100);
    expect(nextThreshold([80, 100], 100)).toBeUndefined();
  });
});
