/**
 * The BudgetStatus message, built once for GetBudgetStatus (budget-view.ts) and
 * RecordUsage's answer (usage/record-usage.ts), so the two never disagree on a
 * percentage, the next threshold or the period shown.
 */
import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { BudgetLimits, BudgetUsage } from "../../../core/budget/limits.js";
import type { BudgetPeriodName, PeriodWindow } from "../../../core/budget/periods.js";
import {
  type BudgetStateName,
  dimensionPercents,
  nextThreshold,
  remainingOf,
  stateToProto,
} from "../../../core/budget/status.js";
import {
  BudgetLimitsSchema,
  type BudgetStatus,
  BudgetStatusSchema,
  BudgetThresholdSchema,
  type BudgetUsage as BudgetUsageProto,
  BudgetUsageSchema,
} from "../../../proto/gen/fulcrum/cost/v1/budget_pb.js";

export interface StatusFacts {
  budgetId: string;
  state: BudgetStateName;
  /** The budget's usage % (core usagePercent: its most consumed limit). */
  percent: number;
  limits: BudgetLimits;
  used: BudgetUsage;
  thresholds: readonly number[];
  periodStart: Date;
  window: PeriodWindow;
}

const big = (v: number | undefined) => (v === undefined ? undefined : BigInt(v));
export const usdOf = (micros: number) => micros / 1_000_000;
const durationOf = (ms: number) =>
  create(DurationSchema, {
    seconds: BigInt(Math.floor(ms / 1000)),
    nanos: (ms % 1000) * 1_000_000,
  });

/** Start of the period shown: INFINITE budgets count from their creation, not 1970. */
export function periodStartOf(
  period: BudgetPeriodName,
  createdAtMs: number,
  window: PeriodWindow,
): Date {
  return new Date(period === "INFINITE" ? createdAtMs : window.startMs);
}

export function usageProto(used: BudgetUsage): BudgetUsageProto {
  return create(BudgetUsageSchema, {
    totalTokens: BigInt(used.tokens),
    inputTokens: BigInt(used.inputTokens),
    outputTokens: BigInt(used.outputTokens),
    costUsd: usdOf(used.costMicros),
    llmCalls: BigInt(used.llmCalls),
    toolCalls: BigInt(used.toolCalls),
  });
}

/** Usage, per-limit percentages, what remains and the next threshold, in API units. */
export function budgetStatusProto(facts: StatusFacts, now: Date): BudgetStatus {
  const pct = dimensionPercents(facts.limits, facts.used);
  const left = remainingOf(facts.limits, facts.used);
  const next = nextThreshold(facts.thresholds, facts.percent);
  return create(BudgetStatusSchema, {
    budgetId: facts.budgetId,
    status: stateToProto(facts.state),
    usage: usageProto(facts.used),
    // The most consumed of the three token limits: a budget limiting only input (or
    // output) tokens must not report 0 % of its tokens used.
    tokenUsagePercent: Math.max(0, pct.tokens ?? 0, pct.inputTokens ?? 0, pct.outputTokens ?? 0),
    costUsagePercent: pct.costMicros ?? 0,
    llmCallsUsagePercent: pct.llmCalls ?? 0,
    toolCallsUsagePercent: pct.toolCalls ?? 0,
    remaining: create(BudgetLimitsSchema, {
      maxTokens: big(left.tokens),
      maxInputTokens: big(left.inputTokens),
      maxOutputTokens: big(left.outputTokens),
      maxCostUsd: left.costMicros === undefined ? undefined : usdOf(left.costMicros),
      maxLlmCalls: big(left.llmCalls),
      maxToolCalls: big(left.toolCalls),
      ...(left.executionMs !== undefined ? { maxExecutionTime: durationOf(left.executionMs) } : {}),
    }),
    ...(next !== undefined
      ? { nextThreshold: create(BudgetThresholdSchema, { percent: next }) }
      : {}),
    periodStart: timestampFromDate(facts.periodStart),
    ...(facts.window.endMs !== null
      ? { resetAt: timestampFromDate(new Date(facts.window.endMs)) }
      : {}),
    computedAt: timestampFromDate(now),
  });
}
