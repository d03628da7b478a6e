/**
 * The dimensions a budget (or an envelope's own governance) can limit, in the units the
 * ledger counts: integer tokens, calls, micro-USD (1e-6 USD) and milliseconds, never
 * floating dollars or seconds. The order is the ledger scripts' dimension order (1..7).
 */

export const LIMIT_DIMENSIONS = [
  "tokens",
  "inputTokens",
  "outputTokens",
  "costMicros",
  "llmCalls",
  "toolCalls",
  // Summed execution time of the period's calls (Budget max_execution_time).
  "executionMs",
] as const;

export type LimitDimension = (typeof LIMIT_DIMENSIONS)[number];

/** An unset dimension does not apply; 0 allows nothing. */
export type BudgetLimits = Partial<Record<LimitDimension, number>>;

/** Absolute usage of one period, per dimension. */
export type BudgetUsage = Record<LimitDimension, number>;

export const ZERO_USAGE: Readonly<BudgetUsage> = Object.freeze({
  tokens: 0,
  inputTokens: 0,
  outputTokens: 0,
  costMicros: 0,
  llmCalls: 0,
  toolCalls: 0,
  executionMs: 0,
});

/** `a` + `b`, dimension by dimension. */
export function addUsage(a: BudgetUsage, b: BudgetUsage): BudgetUsage {
  const sum = { ...a };
  for (const dim of LIMIT_DIMENSIONS) sum[dim] += b[dim];
  return sum;
}

/** Whether `value` is a count the ledger can hold exactly (a non-negative safe integer). */
export function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}
