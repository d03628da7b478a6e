import { type Duration, type Timestamp, timestampMs } from "@bufbuild/protobuf/wkt";
import {
  type BudgetLimits,
  BudgetState,
  type BudgetStatus as BudgetStatusMessage,
} from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import type {
  BudgetCheck as BudgetCheckMessage,
  BudgetReservation as BudgetReservationMessage,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { BudgetCheck, BudgetReservation, BudgetStateName } from "./decision-types.js";
import { FulcrumError } from "./errors.js";
import type { Management } from "./management.js";

/**
 * One budget: after RecordUsage counted a call's usage against it, or as
 * client.getBudgetStatus read it.
 */
export interface BudgetStatus {
  budgetId: string;
  status: BudgetStateName;
  /** Consumed in the current period. */
  used: {
    tokens: number;
    inputTokens: number;
    outputTokens: number;
    costUsd: number;
    llmCalls: number;
    toolCalls: number;
  };
  /** Percent of each limit consumed (0 when the limit is unset). */
  tokenUsagePercent: number;
  costUsagePercent: number;
  llmCallsUsagePercent: number;
  toolCallsUsagePercent: number;
  /** What is left of each set limit (undefined when the budget has no such limit). */
  remaining: {
    tokens: number | undefined;
    costUsd: number | undefined;
    llmCalls: number | undefined;
    toolCalls: number | undefined;
    /**
     * Execution time left of the period's max_execution_time, in ms. The time used is
     * not reported: the API's BudgetUsage has no execution-time field.
     */
    executionMs: number | undefined;
  };
  /** The next threshold (percent) not yet crossed; undefined when all were. */
  nextThresholdPercent: number | undefined;
  periodStart: Date | undefined;
  resetAt: Date | undefined;
}

/** `BUDGET_STATE_WARNING` → `"WARNING"`; unset → `""`; a state newer than the SDK → its number. */
export function budgetStateName(value: BudgetState): BudgetStateName {
  if (value === BudgetState.UNSPECIFIED) return "";
  return BudgetState[value] ?? String(value);
}

function date(ts: Timestamp | undefined): Date | undefined {
  return ts ? new Date(timestampMs(ts)) : undefined;
}

// int64 counters arrive as bigint; budgets never come near 2^53 tokens or calls.
function num(value: bigint | undefined): number | undefined {
  return value === undefined ? undefined : Number(value);
}

function budgetCheck(c: BudgetCheckMessage): BudgetCheck {
  return {
    budgetId: c.budgetId,
    name: c.name,
    scope: c.scope,
    status: budgetStateName(c.status),
    tokensRemaining: num(c.tokensRemaining),
    costRemainingUsd: c.costRemainingUsd,
    llmCallsRemaining: num(c.llmCallsRemaining),
    toolCallsRemaining: num(c.toolCallsRemaining),
    exceeded: c.exceeded,
    resetAt: date(c.resetAt),
    reason: c.reason,
  };
}

/** The decision's `budget`; undefined when the response carried none. */
export function budgetReservation(
  r: BudgetReservationMessage | undefined,
): BudgetReservation | undefined {
  if (!r) return undefined;
  return {
    reservationId: r.reservationId,
    expiresAt: date(r.expiresAt),
    reservedTokens: Number(r.reservedTokens),
    reservedCostUsd: r.reservedCostUsd,
    budgets: r.budgets.map(budgetCheck),
    failed: r.failed,
  };
}

function ms(d: Duration | undefined): number | undefined {
  return d === undefined ? undefined : Number(d.seconds) * 1000 + Math.floor(d.nanos / 1e6);
}

function remaining(limits: BudgetLimits | undefined): BudgetStatus["remaining"] {
  return {
    tokens: num(limits?.maxTokens),
    costUsd: limits?.maxCostUsd,
    llmCalls: num(limits?.maxLlmCalls),
    toolCalls: num(limits?.maxToolCalls),
    executionMs: ms(limits?.maxExecutionTime),
  };
}

export function budgetStatus(s: BudgetStatusMessage): BudgetStatus {
  const u = s.usage;
  return {
    budgetId: s.budgetId,
    status: budgetStateName(s.status),
    used: {
      tokens: Number(u?.totalTokens ?? 0n),
      inputTokens: Number(u?.inputTokens ?? 0n),
      outputTokens: Number(u?.outputTokens ?? 0n),
      costUsd: u?.costUsd ?? 0,
      llmCalls: Number(u?.llmCalls ?? 0n),
      toolCalls: Number(u?.toolCalls ?? 0n),
    },
    tokenUsagePercent: s.tokenUsagePercent,
    costUsagePercent: s.costUsagePercent,
    llmCallsUsagePercent: s.llmCallsUsagePercent,
    toolCallsUsagePercent: s.toolCallsUsagePercent,
    remaining: remaining(s.remaining),
    nextThresholdPercent: s.nextThreshold?.percent,
    periodStart: date(s.periodStart),
    resetAt: date(s.resetAt),
  };
}

/**
 * CostService.GetBudgetStatus (transient failures retried). An unknown budget id throws
 * FulcrumError("NotFound"): unlike an approval, a budget exists before anyone asks.
 */
export async function getBudgetStatus(
  management: Management,
  budgetId: string,
  options: { signal?: AbortSignal } = {},
): Promise<BudgetStatus> {
  if (!budgetId) throw new FulcrumError("InvalidArgument", "budgetId is required");
  const { status } = await management.call(
    (call) => management.costs.getBudgetStatus({ budgetId }, call),
    options,
  );
  if (!status) throw new FulcrumError("Internal", "GetBudgetStatus answered without a status");
  return budgetStatus(status);
}
