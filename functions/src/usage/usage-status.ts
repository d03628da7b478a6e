/**
 * A counted budget as RecordUsage answers it (BudgetStatus): usage, per-limit
 * percentages, what remains and the next threshold, in API units (USD as a double).
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { dimensionPercents, remainingOf, stateToProto } from "../../../core/budget/status.js";
import {
  BudgetLimitsSchema,
  type BudgetStatus,
  BudgetStatusSchema,
  BudgetThresholdSchema,
  BudgetUsageSchema,
} from "../../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import type { CountedBudget } from "./budget-counting.js";

const big = (v: number | undefined) => (v === undefined ? undefined : BigInt(v));

export function countedStatus(counted: CountedBudget, now: Date): BudgetStatus {
  const { row, window } = counted;
  const pct = dimensionPercents(row.limits, row.used);
  const left = remainingOf(row.limits, row.used);
  const next = row.thresholds
    .filter((t) => !t.notified && t.percent > counted.percent)
    .sort((a, b) => a.percent - b.percent)[0];
  return create(BudgetStatusSchema, {
    budgetId: row.id,
    status: stateToProto(counted.state),
    usage: create(BudgetUsageSchema, {
      totalTokens: BigInt(row.used.tokens),
      inputTokens: BigInt(row.used.inputTokens),
      outputTokens: BigInt(row.used.outputTokens),
      costUsd: row.used.costMicros / 1_000_000,
      llmCalls: BigInt(row.used.llmCalls),
      toolCalls: BigInt(row.used.toolCalls),
    }),
    tokenUsagePercent: pct.tokens ?? 0,
    costUsagePercent: pct.costMicros ?? 0,
    llmCallsUsagePercent: pct.llmCalls ?? 0,
    toolCallsUsagePercent: pct.toolCalls ?? 0,
    remaining: create(BudgetLimitsSchema, {
      maxTokens: big(left.tokens),
      maxInputTokens: big(left.inputTokens),
      maxOutputTokens: big(left.outputTokens),
      maxCostUsd: left.costMicros === undefined ? undefined : left.costMicros / 1_000_000,
      maxLlmCalls: big(left.llmCalls),
      maxToolCalls: big(left.toolCalls),
    }),
    ...(next ? { nextThreshold: create(BudgetThresholdSchema, { percent: next.percent }) } : {}),
    periodStart: timestampFromDate(new Date(window.startMs)),
    ...(window.endMs !== null ? { resetAt: timestampFromDate(new Date(window.endMs)) } : {}),
    computedAt: timestampFromDate(now),
  });
}
