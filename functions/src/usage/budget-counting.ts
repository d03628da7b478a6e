/**
 * Counting usage on a locked budget row: the period rollover first (when the row still
 * counts an earlier period), then the usage, then the thresholds the new usage reached.
 * A threshold is marked `notified` in the row under its lock, so its event is emitted
 * once per period however many settles race; a rollover clears the marks (and emits
 * BUDGET_RESET).
 *
 * Usage is counted in the period it is recorded in, not the one `occurred_at` falls in:
 * the edge's counters and reservations are per current period, and a settle that arrives
 * just after a reset would otherwise be lost to a counter nobody reads any more.
 */
import { sql } from "drizzle-orm";
import { addUsage, type BudgetUsage, ZERO_USAGE } from "../../../core/budget/limits.js";
import type { PeriodWindow } from "../../../core/budget/periods.js";
import {
  type BudgetStateName,
  budgetState,
  normalizeThresholds,
  usagePercent,
} from "../../../core/budget/status.js";
import type { Tx } from "../db/tenant-transaction.js";
import type { BudgetRow, StoredThreshold } from "./budget-rows.js";
import { microsToNumeric } from "./money.js";

export interface UsageDelta {
  /** The call's usage, execution time included. */
  usage: BudgetUsage;
}

export type BudgetSignal =
  | { kind: "reset"; previousStartMs: number }
  | { kind: "threshold"; percent: number; exceeded: boolean };

export interface CountedBudget {
  row: BudgetRow;
  window: PeriodWindow;
  percent: number;
  state: BudgetStateName;
  /** In order: a reset (if any), then the thresholds reached, ascending. */
  signals: BudgetSignal[];
}

/** The row after counting `delta` at `now` (pure; `writeCounted` stores it). */
export function countUsage(
  row: BudgetRow,
  window: PeriodWindow,
  delta: UsageDelta,
  now: Date,
): CountedBudget {
  const signals: BudgetSignal[] = [];
  let used = row.used;
  let thresholds: StoredThreshold[] =
    row.thresholds.length > 0
      ? row.thresholds.map((t) => ({ ...t }))
      : normalizeThresholds().map((percent) => ({ percent, notified: false, notified_at: null }));
  let periodStartMs = row.periodStartMs;
  if (row.periodStartMs < window.startMs) {
    signals.push({ kind: "reset", previousStartMs: row.periodStartMs });
    used = ZERO_USAGE;
    thresholds = thresholds.map((t) => ({
      percent: t.percent,
      notified: false,
      notified_at: null,
    }));
    periodStartMs = window.startMs;
  }
  const after = addUsage(used, delta.usage);
  const percent = usagePercent(row.limits, after);
  // Ascending, so a jump from 50 % to 120 % reports the warning before the exhaustion.
  for (const t of [...thresholds].sort((a, b) => a.percent - b.percent)) {
    if (t.notified || t.percent > percent) continue;
    t.notified = true;
    t.notified_at = now.toISOString();
    signals.push({ kind: "threshold", percent: t.percent, exceeded: t.percent >= 100 });
  }
  const suspended = row.status === "SUSPENDED";
  const state = budgetState(
    percent,
    thresholds.map((t) => t.percent),
    suspended,
  );
  return {
    row: {
      ...row,
      used: after,
      thresholds,
      periodStartMs,
    },
    window,
    percent,
    state,
    signals,
  };
}

/** Stores a counted row (still under the lock `lockApplicableBudgets` took). */
export async function writeCounted(tx: Tx, counted: CountedBudget): Promise<void> {
  const { row, window, state } = counted;
  const u = row.used;
  await tx.execute(sql`
    update budgets set
      period_start = ${new Date(row.periodStartMs).toISOString()}::timestamptz,
      reset_at = ${window.endMs === null ? null : new Date(window.endMs).toISOString()}::timestamptz,
      current_tokens = ${u.tokens},
      current_input_tokens = ${u.inputTokens},
      current_output_tokens = ${u.outputTokens},
      current_spend_usd = ${microsToNumeric(u.costMicros)}::numeric,
      current_llm_calls = ${u.llmCalls},
      current_tool_calls = ${u.toolCalls},
      current_execution_ms = ${u.executionMs},
      thresholds = ${JSON.stringify(row.thresholds)}::jsonb,
      status = ${state},
      updated_at = now()
    where id = ${row.id}::uuid`);
}
