/**
 * Budget rows as RecordUsage and reconciliation read them (raw SQL on the migration-0004
 * columns, so the module does not depend on how the drizzle mirror names them): limits
 * and usage in ledger units, the current period window, and the Redis counter each row
 * is mirrored to.
 */
import { sql } from "drizzle-orm";
import type { BudgetKeys } from "../../../core/budget/budget-keys.js";
import type { UsedValues } from "../../../core/budget/ledger-types.js";
import type { BudgetLimits, BudgetUsage } from "../../../core/budget/limits.js";
import {
  type BudgetPeriodName,
  counterExpiryMs,
  type PeriodWindow,
  periodWindow,
} from "../../../core/budget/periods.js";
import type { Tx } from "../db/tenant-transaction.js";
import { numericToMicros } from "./money.js";

/** One `thresholds` entry as stored (snake_case, per period). */
export interface StoredThreshold {
  percent: number;
  notified: boolean;
  notified_at: string | null;
}

export interface BudgetRow {
  id: string;
  name: string;
  workflowId: string | null;
  envelopeId: string | null;
  period: BudgetPeriodName;
  periodSeconds: number | null;
  createdAtMs: number;
  periodStartMs: number;
  limits: BudgetLimits;
  thresholds: StoredThreshold[];
  status: string;
  hardLimit: boolean;
  /** Execution time included (executionMs = current_execution_ms). */
  used: BudgetUsage;
}

/** The budget's columns, with times as epoch ms and counts as float8 (exact below 2^53). */
const COLUMNS = sql.raw(`id::text as id, name, workflow_id, envelope_id::text as envelope_id,
  period, period_seconds, (extract(epoch from created_at) * 1000)::float8 as created_ms,
  (extract(epoch from period_start) * 1000)::float8 as period_start_ms,
  max_tokens::float8 as max_tokens, max_input_tokens::float8 as max_input_tokens,
  max_output_tokens::float8 as max_output_tokens, max_cost_usd::text as max_cost_usd,
  max_llm_calls::float8 as max_llm_calls, max_tool_calls::float8 as max_tool_calls,
  max_execution_seconds::float8 as max_execution_seconds,
  thresholds, status, hard_limit,
  current_tokens::float8 as current_tokens, current_input_tokens::float8 as current_input_tokens,
  current_output_tokens::float8 as current_output_tokens,
  current_spend_usd::text as current_spend_usd, current_llm_calls::float8 as current_llm_calls,
  current_tool_calls::float8 as current_tool_calls,
  current_execution_ms::float8 as current_execution_ms`);

type Raw = Record<string, unknown>;

const num = (v: unknown): number => (v === null || v === undefined ? 0 : Number(v));
const opt = (v: unknown): number | undefined =>
  v === null || v === undefined ? undefined : Number(v);

function toBudgetRow(r: Raw): BudgetRow {
  const limits: BudgetLimits = {};
  const set = (dim: keyof BudgetLimits, v: number | undefined) => {
    if (v !== undefined) limits[dim] = v;
  };
  set("tokens", opt(r.max_tokens));
  set("inputTokens", opt(r.max_input_tokens));
  set("outputTokens", opt(r.max_output_tokens));
  set("costMicros", r.max_cost_usd == null ? undefined : numericToMicros(String(r.max_cost_usd)));
  set("llmCalls", opt(r.max_llm_calls));
  set("toolCalls", opt(r.max_tool_calls));
  const maxSeconds = opt(r.max_execution_seconds);
  set("executionMs", maxSeconds === undefined ? undefined : maxSeconds * 1000);
  const thresholds = Array.isArray(r.thresholds) ? (r.thresholds as StoredThreshold[]) : [];
  return {
    id: String(r.id),
    name: String(r.name),
    workflowId: (r.workflow_id as string | null) ?? null,
    envelopeId: (r.envelope_id as string | null) ?? null,
    period: r.period as BudgetPeriodName,
    periodSeconds: opt(r.period_seconds) ?? null,
    createdAtMs: Math.floor(num(r.created_ms)),
    periodStartMs: Math.floor(num(r.period_start_ms)),
    limits,
    thresholds: thresholds
      .filter((t) => typeof t?.percent === "number")
      .map((t) => ({
        percent: t.percent,
        notified: t.notified === true,
        notified_at: t.notified_at ?? null,
      })),
    status: String(r.status),
    hardLimit: r.hard_limit !== false,
    used: {
      tokens: num(r.current_tokens),
      inputTokens: num(r.current_input_tokens),
      outputTokens: num(r.current_output_tokens),
      costMicros: numericToMicros(String(r.current_spend_usd ?? "0")),
      llmCalls: num(r.current_llm_calls),
      toolCalls: num(r.current_tool_calls),
      executionMs: num(r.current_execution_ms),
    },
  };
}

const uuidArray = (ids: readonly string[]) => `{${ids.join(",")}}`;

/**
 * The budgets usage counts against, locked in id order (every writer of several budget
 * rows locks them in this order, so two settles never deadlock): the tenant-wide ones,
 * the workflow's, those scoped to the envelope or an ancestor, and `extraIds` (the
 * envelopes' governance budgets, the reservation's budgets).
 */
export async function lockApplicableBudgets(
  tx: Tx,
  scope: { workflowId?: string; envelopeIds: readonly string[]; extraIds: readonly string[] },
): Promise<BudgetRow[]> {
  const { rows } = await tx.execute<Raw>(sql`
    select ${COLUMNS} from budgets
     where (workflow_id is null and envelope_id is null)
        or workflow_id = ${scope.workflowId ?? null}
        or envelope_id = any(${uuidArray(scope.envelopeIds)}::uuid[])
        or id = any(${uuidArray(scope.extraIds)}::uuid[])
     order by id
       for no key update`);
  return rows.map(toBudgetRow);
}

/** Every budget of the tenant (reconciliation), unlocked. */
export async function allBudgets(tx: Tx): Promise<BudgetRow[]> {
  const { rows } = await tx.execute<Raw>(sql`select ${COLUMNS} from budgets order by id`);
  return rows.map(toBudgetRow);
}

/** The row's period window at `nowMs` (budgets.created_at anchors CUSTOM periods). */
export function windowOf(row: BudgetRow, nowMs: number): PeriodWindow {
  return periodWindow(
    row.period,
    { customSeconds: row.periodSeconds ?? 0, anchorMs: row.createdAtMs },
    nowMs,
  );
}

/** The ledger's absolute values of a budget's counter for `window` (its current period). */
export function budgetUsed(
  keys: BudgetKeys,
  tenantId: string,
  row: BudgetRow,
  window: PeriodWindow,
  nowMs: number,
): UsedValues {
  return {
    key: keys.counter(tenantId, row.id, window.startMs),
    ...usedFields(row.used),
    expireAtMs: counterExpiryMs(window.endMs, nowMs),
  };
}

export function usedFields(u: BudgetUsage): Omit<UsedValues, "key" | "expireAtMs"> {
  return {
    u_tok: u.tokens,
    u_in: u.inputTokens,
    u_out: u.outputTokens,
    u_cost: u.costMicros,
    u_llm: u.llmCalls,
    u_tool: u.toolCalls,
    u_exec: u.executionMs,
  };
}
