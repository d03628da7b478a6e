import { sql } from "drizzle-orm";
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  numeric,
  type PgTableExtraConfigValue,
  pgTable,
  text,
  timestamp,
  unique,
  uuid,
} from "drizzle-orm/pg-core";
import { BUDGET_PERIODS } from "../../core/budget/periods.js";
import { BUDGET_STATES } from "../../core/budget/status.js";
import { envelopes } from "./envelopes.js";
import { sameTenantReference, tenantIsolation, tenantReference } from "./tenant-rls.js";

// The names core/budget computes with (the CHECKs stay literal: they mirror migration SQL).
export const budgetPeriods = BUDGET_PERIODS;
export const budgetStatuses = BUDGET_STATES;

/** One threshold of `thresholds`. */
export interface BudgetThreshold {
  percent: number;
  notified: boolean;
  notified_at: string | null;
}

const usd = (name: string) => numeric(name, { precision: 18, scale: 6 });

export const budgets = pgTable(
  "budgets",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    tags: text("tags").array().notNull().default(sql`'{}'`),
    workflowId: text("workflow_id"),
    period: text("period", { enum: budgetPeriods }).notNull(),
    /** Only (and always) for CUSTOM. */
    periodSeconds: integer("period_seconds"),
    maxTokens: bigint("max_tokens", { mode: "number" }),
    maxInputTokens: bigint("max_input_tokens", { mode: "number" }),
    maxOutputTokens: bigint("max_output_tokens", { mode: "number" }),
    maxCostUsd: usd("max_cost_usd"),
    maxLlmCalls: bigint("max_llm_calls", { mode: "number" }),
    maxToolCalls: bigint("max_tool_calls", { mode: "number" }),
    maxExecutionSeconds: integer("max_execution_seconds"),
    thresholds: jsonb("thresholds").$type<BudgetThreshold[]>().notNull().default([]),
    currentSpendUsd: usd("current_spend_usd").notNull().default("0"),
    currentTokens: bigint("current_tokens", { mode: "number" }).notNull().default(0),
    status: text("status", { enum: budgetStatuses }).notNull().default("OK"),
    resetAt: timestamp("reset_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    // Migration 0004 (columns in the order it adds them).
    /** Scope envelope (never together with workflowId); deleted with the envelope. */
    envelopeId: uuid("envelope_id"),
    /** false: counted and notified, never denied. */
    hardLimit: boolean("hard_limit").notNull().default(true),
    createdBy: text("created_by"),
    /** The start of the period the current_* columns count (rolled over by RecordUsage). */
    periodStart: timestamp("period_start", { withTimezone: true }).notNull().defaultNow(),
    currentInputTokens: bigint("current_input_tokens", { mode: "number" }).notNull().default(0),
    currentOutputTokens: bigint("current_output_tokens", { mode: "number" }).notNull().default(0),
    currentLlmCalls: bigint("current_llm_calls", { mode: "number" }).notNull().default(0),
    currentToolCalls: bigint("current_tool_calls", { mode: "number" }).notNull().default(0),
    currentExecutionMs: bigint("current_execution_ms", { mode: "number" }).notNull().default(0),
  },
  // Typed: budgets and envelopes reference each other, which TypeScript cannot infer.
  (t): PgTableExtraConfigValue[] => [
    unique("budgets_tenant_id_id_key").on(t.tenantId, t.id),
    unique("budgets_tenant_id_name_key").on(t.tenantId, t.name),
    index("budgets_tenant_id_workflow_id_idx").on(t.tenantId, t.workflowId),
    index("budgets_tenant_id_envelope_id_idx")
      .on(t.tenantId, t.envelopeId)
      .where(sql`envelope_id IS NOT NULL`),
    sameTenantReference("budgets_envelope_id_fkey", t.tenantId, t.envelopeId, envelopes).onDelete(
      "cascade",
    ),
    check("budgets_name_check", sql`length(${t.name}) BETWEEN 1 AND 200`),
    check(
      "budgets_period_check",
      sql`${t.period} IN ('HOURLY', 'DAILY', 'WEEKLY', 'MONTHLY', 'QUARTERLY', 'YEARLY', 'CUSTOM', 'INFINITE')`,
    ),
    check("budgets_period_seconds_check", sql`${t.periodSeconds} > 0`),
    check("budgets_max_tokens_check", sql`${t.maxTokens} >= 0`),
    check("budgets_max_input_tokens_check", sql`${t.maxInputTokens} >= 0`),
    check("budgets_max_output_tokens_check", sql`${t.maxOutputTokens} >= 0`),
    check("budgets_max_cost_usd_check", sql`${t.maxCostUsd} >= 0`),
    check("budgets_max_llm_calls_check", sql`${t.maxLlmCalls} >= 0`),
    check("budgets_max_tool_calls_check", sql`${t.maxToolCalls} >= 0`),
    check("budgets_max_execution_seconds_check", sql`${t.maxExecutionSeconds} > 0`),
    check("budgets_thresholds_check", sql`jsonb_typeof(${t.thresholds}) = 'array'`),
    check("budgets_current_spend_usd_check", sql`${t.currentSpendUsd} >= 0`),
    check("budgets_current_tokens_check", sql`${t.currentTokens} >= 0`),
    check(
      "budgets_status_check",
      sql`${t.status} IN ('OK', 'WARNING', 'CRITICAL', 'EXCEEDED', 'SUSPENDED')`,
    ),
    check(
      "budgets_custom_period_check",
      sql`(${t.period} = 'CUSTOM') = (${t.periodSeconds} IS NOT NULL)`,
    ),
    check("budgets_scope_check", sql`${t.workflowId} IS NULL OR ${t.envelopeId} IS NULL`),
    check("budgets_current_input_tokens_check", sql`${t.currentInputTokens} >= 0`),
    check("budgets_current_output_tokens_check", sql`${t.currentOutputTokens} >= 0`),
    check("budgets_current_llm_calls_check", sql`${t.currentLlmCalls} >= 0`),
    check("budgets_current_tool_calls_check", sql`${t.currentToolCalls} >= 0`),
    check("budgets_current_execution_ms_check", sql`${t.currentExecutionMs} >= 0`),
    tenantReference("budgets", t.tenantId),
    tenantIsolation(),
  ],
).enableRLS();
