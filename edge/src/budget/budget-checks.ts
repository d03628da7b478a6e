import type { CounterRefusal, CounterRemaining } from "../../../core/budget/ledger.js";
import type { LimitDimension } from "../../../core/budget/limits.js";
import { microsToUsd } from "../../../core/budget/prices.js";
import { type BudgetStateName, budgetState } from "../../../core/budget/status.js";
import type { Estimate, PlannedCounter } from "./budget-plan.js";

/** One budget a decision was checked against, as BudgetCheck reports it. */
export interface BudgetCheckResult {
  budgetId: string;
  name: string;
  scope: PlannedCounter["scope"];
  status: BudgetStateName;
  /** What is left of each limited dimension (after this reservation when it was made). */
  remaining: Partial<Record<LimitDimension, number>>;
  exceeded: boolean;
  resetAtMs: number | null;
  /** Why it refused, for people; "" when it did not. */
  reason: string;
}

const DIMENSION_WORDS: Record<LimitDimension, string> = {
  tokens: "tokens",
  inputTokens: "input tokens",
  outputTokens: "output tokens",
  costMicros: "cost",
  llmCalls: "LLM calls",
  toolCalls: "tool calls",
  executionMs: "execution time",
};

const ESTIMATED: Partial<Record<LimitDimension, keyof Estimate>> = {
  tokens: "tokens",
  costMicros: "costMicros",
  llmCalls: "llmCalls",
  toolCalls: "toolCalls",
};

function amount(dim: LimitDimension, n: number): string {
  if (dim === "costMicros") return `$${trimmed(microsToUsd(n), 6)}`;
  // Budgets limit execution time in seconds (max_execution_time); ms would read as noise.
  if (dim === "executionMs") return `${trimmed(n / 1000, 3)}s`;
  return String(n);
}

const trimmed = (n: number, digits: number) => n.toFixed(digits).replace(/\.?0+$/, "");

export function checkOf(
  counter: PlannedCounter,
  left: CounterRemaining | undefined,
  refusal: CounterRefusal | undefined,
  estimate: Estimate,
): BudgetCheckResult {
  const remaining = left?.remaining ?? {};
  let percent = 0;
  for (const [dim, limit] of Object.entries(counter.limits) as [LimitDimension, number][]) {
    const rest = remaining[dim];
    if (rest === undefined) continue;
    percent = Math.max(percent, limit > 0 ? ((limit - rest) / limit) * 100 : 100);
  }
  let status = budgetState(percent, counter.thresholds, counter.suspended);
  if (refusal?.reason === "EXHAUSTED") status = "EXCEEDED";
  return {
    budgetId: counter.budgetId,
    name: counter.name,
    scope: counter.scope,
    status,
    remaining,
    exceeded: refusal !== undefined,
    resetAtMs: counter.resetAtMs,
    reason: refusal ? refusalText(counter, refusal, estimate) : "",
  };
}

/** e.g. `budget "Team monthly" (b-1): tokens exhausted (1000 of 1000 used)`. */
export function refusalText(
  counter: PlannedCounter,
  refusal: CounterRefusal,
  estimate: Estimate,
): string {
  const who = counter.counterId.startsWith("env:")
    ? counter.name
    : `budget "${counter.name}" (${counter.budgetId})`;
  if (refusal.reason === "SUSPENDED" || !refusal.dimension) {
    return `${who} is suspended: every call is denied until it is set back to OK`;
  }
  const dim = refusal.dimension;
  const words = DIMENSION_WORDS[dim];
  const of = (n: number) => amount(dim, n);
  const reset =
    counter.resetAtMs === null ? "" : `; it resets at ${new Date(counter.resetAtMs).toISOString()}`;
  if (refusal.reason === "EXHAUSTED") {
    return `${who}: ${words} exhausted (${of(refusal.used)} of ${of(refusal.limit)} used)${reset}`;
  }
  const field = ESTIMATED[dim];
  const asked = field ? estimate[field] : 0;
  return `${who}: this call's ${words} (${of(asked)}) would exceed the limit (${of(refusal.used)} used + ${of(refusal.reserved)} reserved of ${of(refusal.limit)})${reset}`;
}
