import { sql } from "drizzle-orm";
import { check, index, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { envelopes } from "./envelopes.js";
import { policies } from "./policies.js";
import { sameTenantReference, tenantIsolation, tenantReference } from "./tenant-rls.js";
import { users } from "./users.js";

export const approvalStatuses = [
  "PENDING",
  "APPROVED",
  "REJECTED",
  "EXPIRED",
  "CANCELLED",
] as const;

/** A REQUIRE_APPROVAL decision waiting for (or given) a reviewer's answer. */
export const approvals = pgTable(
  "approvals",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    envelopeId: uuid("envelope_id"),
    policyId: uuid("policy_id"),
    workflowId: text("workflow_id"),
    /** The tool or action that needs approval, e.g. `delete_user`. */
    actionName: text("action_name").notNull(),
    actionArguments: jsonb("action_arguments").notNull().default({}),
    reason: text("reason"),
    status: text("status", { enum: approvalStatuses }).notNull().default("PENDING"),
    reviewerId: uuid("reviewer_id"),
    reviewNote: text("review_note"),
    /** Set exactly when the status is APPROVED or REJECTED. */
    reviewedAt: timestamp("reviewed_at", { withTimezone: true }),
    expiresAt: timestamp("expires_at", { withTimezone: true }).notNull(),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    // Migration 0004: what the edge records when a decision needs a reviewer.
    /** sha256 hex of the action's canonical arguments; an approval allows that action once. */
    argumentsHash: text("arguments_hash"),
    decisionId: uuid("decision_id"),
    ruleId: text("rule_id"),
    /** The id of the API key that asked. */
    requestedBy: text("requested_by"),
    reasons: text("reasons").array().notNull().default(sql`'{}'`),
    context: jsonb("context").notNull().default({}),
    reviewer: text("reviewer"),
    /** When the approved retry was allowed (once). */
    consumedAt: timestamp("consumed_at", { withTimezone: true }),
  },
  (t) => [
    sameTenantReference("approvals_envelope_id_fkey", t.tenantId, t.envelopeId, envelopes),
    sameTenantReference("approvals_policy_id_fkey", t.tenantId, t.policyId, policies),
    sameTenantReference("approvals_reviewer_id_fkey", t.tenantId, t.reviewerId, users),
    index("approvals_tenant_id_status_expires_at_idx").on(t.tenantId, t.status, t.expiresAt),
    index("approvals_tenant_id_envelope_id_idx")
      .on(t.tenantId, t.envelopeId)
      .where(sql`envelope_id IS NOT NULL`),
    index("approvals_tenant_id_arguments_hash_idx").on(t.tenantId, t.argumentsHash),
    check("approvals_arguments_hash_check", sql`${t.argumentsHash} ~ '^[0-9a-f]{64}$'`),
    check("approvals_context_check", sql`jsonb_typeof(${t.context}) = 'object'`),
    check("approvals_action_name_check", sql`length(${t.actionName}) BETWEEN 1 AND 200`),
    check(
      "approvals_status_check",
      sql`${t.status} IN ('PENDING', 'APPROVED', 'REJECTED', 'EXPIRED', 'CANCELLED')`,
    ),
    check(
      "approvals_reviewed_check",
      sql`(${t.status} IN ('APPROVED', 'REJECTED')) = (${t.reviewedAt} IS NOT NULL)`,
    ),
    check("approvals_expires_after_created_check", sql`${t.expiresAt} > ${t.createdAt}`),
    tenantReference("approvals", t.tenantId),
    tenantIsolation(),
  ],
).enableRLS();
