/**
 * A budget row as the API shows it at a given time: its current period, the usage of that
 * period (zero when the row still counts an earlier one: RecordUsage rolls a row over only
 * when usage arrives, so a quiet budget's columns may hold last period's numbers), the
 * percentage used, its state, and the Budget / BudgetStatus messages.
 */
import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type BudgetLimits, type BudgetUsage, ZERO_USAGE } from "../../../core/budget/limits.js";
import { type PeriodWindow, periodToProto, periodWindow } from "../../../core/budget/periods.js";
import {
  type BudgetStateName,
  budgetState,
  stateToProto,
  usagePercent,
} from "../../../core/budget/status.js";
import type { budgets } from "../../../db/schema/index.js";
import {
  type Budget,
  BudgetLimitsSchema,
  BudgetSchema,
  type BudgetStatus,
  BudgetThresholdSchema,
} from "../../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import { numericToMicros } from "../usage/money.js";
import { budgetStatusProto, periodStartOf, usageProto, usdOf } from "./budget-status.js";

export type BudgetRow = typeof budgets.$inferSelect;

export interface BudgetView {
  row: BudgetRow;
  window: PeriodWindow;
  /** false: the row's usage columns belong to an earlier period (read as zero). */
  current: boolean;
  limits: BudgetLimits;
  used: BudgetUsage;
  percent: number;
  state: BudgetStateName;
}

/** The row's limits in ledger units (cost in micro-USD). */
export function limitsOf(row: BudgetRow): BudgetLimits {
  const limits: BudgetLimits = {};
  if (row.maxTokens !== null) limits.tokens = row.maxTokens;
  if (row.maxInputTokens !== null) limits.inputTokens = row.maxInputTokens;
  if (row.maxOutputTokens !== null) limits.outputTokens = row.maxOutputTokens;
  if (row.maxCostUsd !== null) limits.costMicros = numericToMicros(row.maxCostUsd);
  if (row.maxLlmCalls !== null) limits.llmCalls = row.maxLlmCalls;
  if (row.maxToolCalls !== null) limits.toolCalls = row.maxToolCalls;
  if (row.maxExecutionSeconds !== null) limits.executionMs = row.maxExecutionSeconds * 1000;
  return limits;
}

export function windowOfRow(row: BudgetRow, nowMs: number): PeriodWindow {
  return periodWindow(
    row.period,
    { customSeconds: row.periodSeconds ?? 0, anchorMs: row.createdAt.getTime() },
    nowMs,
  );
}

export function viewOf(row: BudgetRow, now: Date): BudgetView {
  const window = windowOfRow(row, now.getTime());
  const current = row.periodStart.getTime() >= window.startMs;
  const used: BudgetUsage = current
    ? {
        tokens: row.currentTokens,
        inputTokens: row.currentInputTokens,
        outputTokens: row.currentOutputTokens,
        costMicros: numericToMicros(row.currentSpendUsd),
        llmCalls: row.currentLlmCalls,
        toolCalls: row.currentToolCalls,
        executionMs: row.currentExecutionMs,
      }
    : { ...ZERO_USAGE };
  const limits = limitsOf(row);
  const percent = usagePercent(limits, used);
  const thresholds = row.thresholds.map((t) => t.percent);
  const state = budgetState(percent, thresholds, row.status === "SUSPENDED");
  return { row, window, current, limits, used, percent, state };
}

const big = (v: number | undefined) => (v === undefined ? undefined : BigInt(v));

function viewPeriodStart(view: BudgetView): Date {
  return periodStartOf(view.row.period, view.row.createdAt.getTime(), view.window);
}

export function toBudgetProto(view: BudgetView): Budget {
  const { row, limits, window } = view;
  return create(BudgetSchema, {
    budgetId: row.id,
    tenantId: row.tenantId,
    workflowId: row.workflowId ?? "",
    envelopeId: row.envelopeId ?? "",
    name: row.name,
    description: row.description,
    tags: row.tags,
    limits: create(BudgetLimitsSchema, {
      maxTokens: big(limits.tokens),
      maxInputTokens: big(limits.inputTokens),
      maxOutputTokens: big(limits.outputTokens),
      maxCostUsd: limits.costMicros === undefined ? undefined : usdOf(limits.costMicros),
      maxLlmCalls: big(limits.llmCalls),
      maxToolCalls: big(limits.toolCalls),
      ...(row.maxExecutionSeconds !== null
        ? { maxExecutionTime: create(DurationSchema, { seconds: BigInt(row.maxExecutionSeconds) }) }
        : {}),
    }),
    thresholds: row.thresholds.map((t) =>
      create(BudgetThresholdSchema, {
        percent: t.percent,
        // Marks of an earlier period no longer count.
        notified: view.current && t.notified,
        ...(view.current && t.notified_at
          ? { notifiedAt: timestampFromDate(new Date(t.notified_at)) }
          : {}),
      }),
    ),
    period: periodToProto(row.period),
    customPeriodSeconds: BigInt(row.periodSeconds ?? 0),
    currentSpend: usageProto(view.used),
    status: stateToProto(view.state),
    periodStart: timestampFromDate(viewPeriodStart(view)),
    ...(window.endMs !== null ? { resetAt: timestampFromDate(new Date(window.endMs)) } : {}),
    hardLimit: row.hardLimit,
    createdBy: row.createdBy ?? "",
    createdAt: timestampFromDate(row.createdAt),
    updatedAt: timestampFromDate(row.updatedAt),
  });
}

/** GetBudgetStatus: usage, per-limit percentages, what remains, the next threshold. */
export function toStatusProto(view: BudgetView, now: Date): BudgetStatus {
  return budgetStatusProto(
    {
      budgetId: view.row.id,
      state: view.state,
      percent: view.percent,
      limits: view.limits,
      used: view.used,
      thresholds: view.row.thresholds.map((t) => t.percent),
      periodStart: viewPeriodStart(view),
      window: view.window,
    },
    now,
  );
}
