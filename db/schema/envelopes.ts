import { sql } from "drizzle-orm";
import { check, index, jsonb, pgTable, text, timestamp, unique, uuid } from "drizzle-orm/pg-core";
import { ENVELOPE_STATUSES } from "../../core/budget/envelope-record.js";
import { budgets } from "./budgets.js";
import { sameTenantReference, tenantIsolation, tenantReference } from "./tenant-rls.js";

// One list of statuses for the column type, the edge's record and the lifecycle
// (the CHECK below stays literal: it mirrors migration SQL, which schema-drift compares).
export const envelopeStatuses = ENVELOPE_STATUSES;

/** One governed agent execution; sub-agents point at their parent. */
export const envelopes = pgTable(
  "envelopes",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    workflowId: text("workflow_id").notNull(),
    executionId: text("execution_id").notNull(),
    budgetId: uuid("budget_id"),
    parentEnvelopeId: uuid("parent_envelope_id"),
    framework: text("framework").notNull().default("CUSTOM"),
    status: text("status", { enum: envelopeStatuses }).notNull().default("PENDING"),
    statusReason: text("status_reason"),
    /** Token budget, cost limit, timeout, allowed models/tools, max calls, compliance tags. */
    governance: jsonb("governance").notNull().default({}),
    costSummary: jsonb("cost_summary").notNull().default({}),
    metadata: jsonb("metadata").notNull().default({}),
    traceContext: jsonb("trace_context").notNull().default({}),
    startedAt: timestamp("started_at", { withTimezone: true }),
    completedAt: timestamp("completed_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    /** started_at + the governance timeout (migration 0004); the edge denies past it. */
    deadlineAt: timestamp("deadline_at", { withTimezone: true }),
  },
  (t) => [
    unique("envelopes_tenant_id_id_key").on(t.tenantId, t.id),
    unique("envelopes_tenant_id_execution_id_key").on(t.tenantId, t.executionId),
    // ON DELETE SET NULL (budget_id) in SQL (0004): drizzle cannot name the column.
    sameTenantReference("envelopes_budget_id_fkey", t.tenantId, t.budgetId, budgets).onDelete(
      "set null",
    ),
    sameTenantReference("envelopes_parent_envelope_id_fkey", t.tenantId, t.parentEnvelopeId, t),
    index("envelopes_tenant_id_workflow_id_created_at_idx").on(
      t.tenantId,
      t.workflowId,
      t.createdAt,
    ),
    index("envelopes_tenant_id_parent_envelope_id_idx")
      .on(t.tenantId, t.parentEnvelopeId)
      .where(sql`parent_envelope_id IS NOT NULL`),
    index("envelopes_tenant_id_budget_id_idx")
      .on(t.tenantId, t.budgetId)
      .where(sql`budget_id IS NOT NULL`),
    check("envelopes_workflow_id_check", sql`length(${t.workflowId}) BETWEEN 1 AND 200`),
    check("envelopes_execution_id_check", sql`length(${t.executionId}) BETWEEN 1 AND 200`),
    check("envelopes_framework_check", sql`${t.framework} ~ '^[A-Z][A-Z0-9_]{0,39}$'`),
    check(
      "envelopes_status_check",
      sql`${t.status} IN ('PENDING', 'AUTHORIZED', 'RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'TERMINATED', 'BUDGET_EXCEEDED', 'POLICY_VIOLATION', 'TIMEOUT')`,
    ),
    check("envelopes_governance_check", sql`jsonb_typeof(${t.governance}) = 'object'`),
    check("envelopes_cost_summary_check", sql`jsonb_typeof(${t.costSummary}) = 'object'`),
    check("envelopes_metadata_check", sql`jsonb_typeof(${t.metadata}) = 'object'`),
    check("envelopes_trace_context_check", sql`jsonb_typeof(${t.traceContext}) = 'object'`),
    check("envelopes_parent_not_self_check", sql`${t.parentEnvelopeId} <> ${t.id}`),
    tenantReference("envelopes", t.tenantId),
    tenantIsolation(),
  ],
).enableRLS();
