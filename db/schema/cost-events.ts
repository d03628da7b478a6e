import { sql } from "drizzle-orm";
import {
  bigint,
  check,
  index,
  integer,
  numeric,
  pgTable,
  text,
  timestamp,
  unique,
  uuid,
} from "drizzle-orm/pg-core";
import { budgets } from "./budgets.js";
import { envelopes } from "./envelopes.js";
import { sameTenantReference, tenantIsolation, tenantReference } from "./tenant-rls.js";

/** Spend records; a retried publish carries the same `dedupeKey` and is stored once. */
export const costEvents = pgTable(
  "cost_events",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    envelopeId: uuid("envelope_id"),
    budgetId: uuid("budget_id"),
    workflowId: text("workflow_id"),
    modelId: text("model_id"),
    inputTokens: bigint("input_tokens", { mode: "number" }).notNull().default(0),
    outputTokens: bigint("output_tokens", { mode: "number" }).notNull().default(0),
    costUsd: numeric("cost_usd", { precision: 18, scale: 6 }).notNull().default("0"),
    llmCalls: integer("llm_calls").notNull().default(0),
    toolCalls: integer("tool_calls").notNull().default(0),
    dedupeKey: text("dedupe_key"),
    occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    // Migration 0004.
    /** The edge reservation this usage settled (dedupeKey `res:<reservationId>`). */
    reservationId: text("reservation_id"),
    executionMs: bigint("execution_ms", { mode: "number" }).notNull().default(0),
    /** Every budget the event was counted against (no FK: history outlives budgets). */
    budgetIds: uuid("budget_ids").array().notNull().default(sql`'{}'`),
  },
  (t) => [
    unique("cost_events_tenant_id_dedupe_key_key").on(t.tenantId, t.dedupeKey),
    sameTenantReference("cost_events_envelope_id_fkey", t.tenantId, t.envelopeId, envelopes),
    // ON DELETE SET NULL (budget_id) in SQL (0004): drizzle cannot name the column.
    sameTenantReference("cost_events_budget_id_fkey", t.tenantId, t.budgetId, budgets).onDelete(
      "set null",
    ),
    index("cost_events_tenant_id_occurred_at_idx").on(t.tenantId, t.occurredAt),
    index("cost_events_tenant_id_envelope_id_idx")
      .on(t.tenantId, t.envelopeId)
      .where(sql`envelope_id IS NOT NULL`),
    index("cost_events_tenant_id_workflow_id_occurred_at_idx").on(
      t.tenantId,
      t.workflowId,
      t.occurredAt,
    ),
    check("cost_events_input_tokens_check", sql`${t.inputTokens} >= 0`),
    check("cost_events_output_tokens_check", sql`${t.outputTokens} >= 0`),
    check("cost_events_cost_usd_check", sql`${t.costUsd} >= 0`),
    check("cost_events_llm_calls_check", sql`${t.llmCalls} >= 0`),
    check("cost_events_tool_calls_check", sql`${t.toolCalls} >= 0`),
    check("cost_events_reservation_id_check", sql`length(${t.reservationId}) BETWEEN 1 AND 200`),
    check("cost_events_execution_ms_check", sql`${t.executionMs} >= 0`),
    tenantReference("cost_events", t.tenantId),
    tenantIsolation(),
  ],
).enableRLS();
