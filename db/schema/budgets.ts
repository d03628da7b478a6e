import { sql } from "drizzle-orm";
import {
  bigint,
  check,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  text,
  timestamp,
  unique,
  uuid,
} from "drizzle-orm/pg-core";
import { tenantIsolation, tenantReference } from "./tenant-rls.js";

export const budgetPeriods = [
  "HOURLY",
  "DAILY",
  "WEEKLY",
  "MONTHLY",
  "QUARTERLY",
  "YEARLY",
  "CUSTOM",
  "INFINITE",
] as const;
export const budgetStatuses = ["OK", "WARNING", "CRITICAL", "EXCEEDED", "SUSPENDED"] as const;

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
  },
  (t) => [
    unique("budgets_tenant_id_id_key").on(t.tenantId, t.id),
    unique("budgets_tenant_id_name_key").on(t.tenantId, t.name),
    index("budgets_tenant_id_workflow_id_idx").on(t.tenantId, t.workflowId),
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
    tenantReference("budgets", t.tenantId),
    tenantIsolation(),
  ],
).enableRLS();
