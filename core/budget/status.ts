/**
 * A budget's health from its usage: the percentage consumed, the state the API reports
 * and which alert thresholds a change of usage crossed. Pure functions, shared by
 * functions (GetBudgetStatus, RecordUsage's threshold events) and the edge (BudgetCheck).
 */
import { BudgetState } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import {
  type BudgetLimits,
  type BudgetUsage,
  LIMIT_DIMENSIONS,
  type LimitDimension,
} from "./limits.js";

/** The states a budget reports (and budgets.status stores). */
export const BUDGET_STATES = ["OK", "WARNING", "CRITICAL", "EXCEEDED", "SUSPENDED"] as const;
export type BudgetStateName = (typeof BUDGET_STATES)[number];

/** Used when a budget names no thresholds (the issue: 80 % and 100 %). */
export const DEFAULT_THRESHOLDS: readonly number[] = Object.freeze([80, 100]);
/** CRITICAL from this percentage on, whatever the thresholds. */
export const CRITICAL_PERCENT = 95;

/** Sorted, without duplicates; the defaults when none are given. */
export function normalizeThresholds(thresholds?: readonly number[]): number[] {
  if (!thresholds || thresholds.length === 0) return [...DEFAULT_THRESHOLDS];
  return [...new Set(thresholds)].sort((a, b) => a - b);
}

/** used / limit · 100 of each limited dimension; a limit of 0 counts as fully used. */
export function dimensionPercents(
  limits: BudgetLimits,
  used: BudgetUsage,
): Partial<Record<LimitDimension, number>> {
  const percents: Partial<Record<LimitDimension, number>> = {};
  for (const dim of LIMIT_DIMENSIONS) {
    const limit = limits[dim];
    if (limit === undefined) continue;
    percents[dim] = limit > 0 ? (used[dim] / limit) * 100 : 100;
  }
  return percents;
}

/** The budget's usage %: the most consumed limited dimension; 0 when nothing is limited. */
export function usagePercent(limits: BudgetLimits, used: BudgetUsage): number {
  return Math.max(0, ...Object.values(dimensionPercents(limits, used)));
}

/** What is left of each limited dimension (never negative). */
export function remainingOf(
  limits: BudgetLimits,
  used: BudgetUsage,
): Partial<Record<LimitDimension, number>> {
  const left: Partial<Record<LimitDimension, number>> = {};
  for (const dim of LIMIT_DIMENSIONS) {
    const limit = limits[dim];
    if (limit !== undefined) left[dim] = Math.max(0, limit - used[dim]);
  }
  return left;
}

/**
 * SUSPENDED (set by an operator) wins; then EXCEEDED ≥ 100 %, CRITICAL ≥ 95 %, WARNING
 * from the lowest threshold on, else OK.
 *
 * @example budgetState(85, [80, 100], false) // "WARNING"
 */
export function budgetState(
  percent: number,
  thresholds: readonly number[],
  suspended: boolean,
): BudgetStateName {
  if (suspended) return "SUSPENDED";
  if (percent >= 100) return "EXCEEDED";
  if (percent >= CRITICAL_PERCENT) return "CRITICAL";
  const lowest = normalizeThresholds(thresholds)[0] ?? 100;
  return percent >= lowest ? "WARNING" : "OK";
}

export interface ThresholdCrossing {
  percent: number;
  /** Thresholds below 100 warn; 100 and above mean the budget is exhausted. */
  event: "BUDGET_WARNING" | "BUDGET_EXCEEDED";
}

/**
 * The thresholds a change of usage from `beforePct` to `afterPct` reached: before < t ≤ after,
 * ascending. Whether one was already notified this period is the caller's record.
 */
export function crossedThresholds(
  thresholds: readonly number[],
  beforePct: number,
  afterPct: number,
): ThresholdCrossing[] {
  return normalizeThresholds(thresholds)
    .filter((t) => beforePct < t && t <= afterPct)
    .map((percent) => ({
      percent,
      event: percent >= 100 ? "BUDGET_EXCEEDED" : "BUDGET_WARNING",
    }));
}

/** The lowest threshold not yet reached at `percent`; undefined when all are. */
export function nextThreshold(thresholds: readonly number[], percent: number): number | undefined {
  return normalizeThresholds(thresholds).find((t) => t > percent);
}

export function stateToProto(state: BudgetStateName): BudgetState {
  return BudgetState[state];
}
