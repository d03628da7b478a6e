import { sql } from "drizzle-orm";
import {
  check,
  foreignKey,
  index,
  integer,
  pgTable,
  text,
  timestamp,
  uuid,
} from "drizzle-orm/pg-core";
import { policyVersions } from "./policy-versions.js";
import { sameTenantReference, tenantIsolation, tenantReference } from "./tenant-rls.js";
import { users } from "./users.js";

export const policyActivationKinds = ["activate", "rollback"] as const;

/**
 * Every activation and rollback of a policy version (migration 0003): which version, the
 * one active before (null: none), who, why, when. Append-only: `fulcrum_app` has SELECT and
 * INSERT only.
 */
export const policyActivations = pgTable(
  "policy_activations",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    policyId: uuid("policy_id").notNull(),
    version: integer("version").notNull(),
    previousVersion: integer("previous_version"),
    kind: text("kind", { enum: policyActivationKinds }).notNull(),
    activatedBy: uuid("activated_by"),
    reason: text("reason").notNull().default(""),
    occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    // (tenant_id, policy_id, version) → policy_versions: composite, so only the tenant's own.
    foreignKey({
      name: "policy_activations_version_fkey",
      columns: [t.tenantId, t.policyId, t.version],
      foreignColumns: [policyVersions.tenantId, policyVersions.policyId, policyVersions.version],
    }),
    foreignKey({
      name: "policy_activations_previous_version_fkey",
      columns: [t.tenantId, t.policyId, t.previousVersion],
      foreignColumns: [policyVersions.tenantId, policyVersions.policyId, policyVersions.version],
    }),
    sameTenantReference("policy_activations_activated_by_fkey", t.tenantId, t.activatedBy, users),
    index("policy_activations_tenant_id_policy_id_occurred_at_idx").on(
      t.tenantId,
      t.policyId,
      t.occurredAt,
    ),
    check("policy_activations_version_check", sql`${t.version} >= 1`),
    check("policy_activations_previous_version_check", sql`${t.previousVersion} >= 1`),
    check("policy_activations_kind_check", sql`${t.kind} IN ('activate', 'rollback')`),
    check("policy_activations_reason_check", sql`length(${t.reason}) <= 4096`),
    tenantReference("policy_activations", t.tenantId),
    tenantIsolation(),
  ],
).enableRLS();
