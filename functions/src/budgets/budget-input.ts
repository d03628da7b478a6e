/**
 * A Budget message from CreateBudget / UpdateBudget as budgets columns, checked beyond
 * what protovalidate already did (signs, enum values, the CUSTOM rule): what the column
 * types can hold (int64 limits above 2^53, USD beyond numeric(18, 6)), the scope (a
 * workflow or an envelope, not both), a budget that limits nothing.
 */

import { periodFromProto } from "../../../core/budget/periods.js";
import { normalizeThresholds } from "../../../core/budget/status.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { BudgetThreshold as StoredThreshold } from "../../../db/schema/index.js";
import type {
  Budget,
  BudgetLimits,
  BudgetThreshold,
} from "../../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import { optionalUuid } from "../tenancy/ids.js";

/** The limit columns of a budget (null: that dimension is not limited). */
export interface LimitColumns {
  maxTokens: number | null;
  maxInputTokens: number | null;
  maxOutputTokens: number | null;
  /** numeric(18, 6) text. */
  maxCostUsd: string | null;
  maxLlmCalls: number | null;
  maxToolCalls: number | null;
  maxExecutionSeconds: number | null;
}

/** numeric(18, 6) holds 12 digits before the point. */
const MAX_USD = 999_999_999_999;
const MAX_INT32 = 2_147_483_647;
/** The budgets.name CHECK (1..200 characters). */
export const MAX_BUDGET_NAME = 200;

function count(field: string, value: bigint | undefined): number | null {
  if (value === undefined) return null;
  if (value < 0n) throw new FulcrumError("Invalid", `${field} must be >= 0`, { field });
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new FulcrumError("Invalid", `${field} must be at most ${Number.MAX_SAFE_INTEGER}`, {
      field,
    });
  }
  return Number(value);
}

/** USD as numeric(18, 6) text, exact to the micro-dollar. */
export function usdText(field: string, usd: number): string {
  if (!Number.isFinite(usd) || usd < 0 || usd > MAX_USD) {
    throw new FulcrumError("Invalid", `${field} must be between 0 and ${MAX_USD}`, { field });
  }
  const micros = Math.round(usd * 1_000_000);
  return `${Math.floor(micros / 1_000_000)}.${String(micros % 1_000_000).padStart(6, "0")}`;
}

/** The limit columns of `limits`; at least one dimension must be limited. */
export function limitColumns(limits: BudgetLimits | undefined, field: string): LimitColumns {
  if (!limits) throw new FulcrumError("Invalid", `${field} is required`, { field });
  const time = limits.maxExecutionTime;
  let maxExecutionSeconds: number | null = null;
  if (time && (time.seconds > 0n || time.nanos > 0)) {
    // Whole seconds (the column's unit), rounded up so a limit never gets shorter.
    const seconds = Number(time.seconds) + (time.nanos > 0 ? 1 : 0);
    if (seconds > MAX_INT32) {
      throw new FulcrumError("Invalid", `${field}.max_execution_time is too long`, {
        field: `${field}.max_execution_time`,
      });
    }
    maxExecutionSeconds = seconds;
  }
  const columns: LimitColumns = {
    maxTokens: count(`${field}.max_tokens`, limits.maxTokens),
    maxInputTokens: count(`${field}.max_input_tokens`, limits.maxInputTokens),
    maxOutputTokens: count(`${field}.max_output_tokens`, limits.maxOutputTokens),
    maxCostUsd:
      limits.maxCostUsd === undefined ? null : usdText(`${field}.max_cost_usd`, limits.maxCostUsd),
    maxLlmCalls: count(`${field}.max_llm_calls`, limits.maxLlmCalls),
    maxToolCalls: count(`${field}.max_tool_calls`, limits.maxToolCalls),
    maxExecutionSeconds,
  };
  if (Object.values(columns).every((v) => v === null)) {
    throw new FulcrumError(
      "Invalid",
      `${field} sets no limit: set at least one of max_tokens, max_input_tokens, max_output_tokens, max_cost_usd, max_llm_calls, max_tool_calls, max_execution_time`,
      { field },
    );
  }
  return columns;
}

/**
 * The thresholds to store (defaults 80 and 100 when none are given), keeping what was
 * already notified this period for percentages that stay.
 */
export function thresholdColumn(
  given: readonly BudgetThreshold[],
  previous: readonly StoredThreshold[] = [],
): StoredThreshold[] {
  return normalizeThresholds(given.map((t) => t.percent)).map((percent) => {
    const kept = previous.find((p) => p.percent === percent);
    return kept ?? { percent, notified: false, notified_at: null };
  });
}

export interface PeriodColumns {
  period: NonNullable<ReturnType<typeof periodFromProto>>;
  periodSeconds: number | null;
}

export function periodColumns(budget: Budget, field: string): PeriodColumns {
  const period = periodFromProto(budget.period);
  if (!period) {
    throw new FulcrumError("Invalid", `${field}.period is required`, {
      field: `${field}.period`,
    });
  }
  const seconds = budget.customPeriodSeconds;
  if ((period === "CUSTOM") !== seconds > 0n) {
    throw new FulcrumError(
      "Invalid",
      `${field}.custom_period_seconds is required for BUDGET_PERIOD_CUSTOM and only allowed with it`,
      { field: `${field}.custom_period_seconds` },
    );
  }
  if (seconds > BigInt(MAX_INT32)) {
    throw new FulcrumError(
      "Invalid",
      `${field}.custom_period_seconds must be at most ${MAX_INT32}`,
      { field: `${field}.custom_period_seconds` },
    );
  }
  return { period, periodSeconds: period === "CUSTOM" ? Number(seconds) : null };
}

export function checkName(name: string, field: string): string {
  if (name.length < 1 || name.length > MAX_BUDGET_NAME) {
    throw new FulcrumError("Invalid", `${field} must be 1..${MAX_BUDGET_NAME} characters`, {
      field,
    });
  }
  return name;
}

/** The scope of a new budget: the whole tenant, one workflow or one envelope. */
export function scopeColumns(budget: Budget): {
  workflowId: string | null;
  envelopeId: string | null;
} {
  const envelopeId = optionalUuid("budget.envelope_id", budget.envelopeId) ?? null;
  const workflowId = budget.workflowId === "" ? null : budget.workflowId;
  if (workflowId !== null && envelopeId !== null) {
    throw new FulcrumError(
      "Invalid",
      "set budget.workflow_id or budget.envelope_id, not both: a budget has one scope",
      { field: "budget.envelope_id" },
    );
  }
  return { workflowId, envelopeId };
}
