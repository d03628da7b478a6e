import { sql } from "drizzle-orm";
import {
  bigint,
  check,
  index,
  integer,
  jsonb,
  pgTable,
  text,
  timestamp,
  unique,
  uniqueIndex,
  uuid,
} from "drizzle-orm/pg-core";
import { sameTenantReference, tenantIsolation, tenantReference } from "./tenant-rls.js";
import { users } from "./users.js";

export const policyStatuses = ["DRAFT", "ACTIVE", "INACTIVE", "ARCHIVED"] as const;
export const policyEnforcements = ["AUDIT", "WARN", "BLOCK", "TERMINATE"] as const;

export const policies = pgTable(
  "policies",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    tags: text("tags").array().notNull().default(sql`'{}'`),
    status: text("status", { enum: policyStatuses }).notNull().default("DRAFT"),
    enforcement: text("enforcement", { enum: policyEnforcements }).notNull().default("BLOCK"),
    priority: integer("priority").notNull().default(0),
    scope: jsonb("scope").notNull().default({}),
    /** The `version` of the active policy_versions row; null while none is active. */
    activeVersion: integer("active_version"),
    effectiveAt: timestamp("effective_at", { withTimezone: true }),
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    createdBy: uuid("created_by"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
    /**
     * Incremented, under the row lock, by every change that affects what is published; the
     * edge's Redis pointer ignores a write whose revision is not newer than the one it holds.
     */
    revision: bigint("revision", { mode: "number" }).notNull().default(0),
    /** Set exactly while the status is ARCHIVED (deleting a policy archives it). */
    archivedAt: timestamp("archived_at", { withTimezone: true }),
    /** Policy.metadata: a string map, not versioned (like name, description and tags). */
    metadata: jsonb("metadata").$type<Record<string, string>>().notNull().default({}),
  },
  (t) => [
    unique("policies_tenant_id_id_key").on(t.tenantId, t.id),
    /** Unique among non-archived policies: archiving a policy frees its name. */
    uniqueIndex("policies_tenant_id_name_key")
      .on(t.tenantId, t.name)
      .where(sql`status <> 'ARCHIVED'`),
    sameTenantReference("policies_created_by_fkey", t.tenantId, t.createdBy, users),
    index("policies_tenant_id_status_idx").on(t.tenantId, t.status),
    check("policies_name_check", sql`length(${t.name}) BETWEEN 1 AND 200`),
    check("policies_status_check", sql`${t.status} IN ('DRAFT', 'ACTIVE', 'INACTIVE', 'ARCHIVED')`),
    check(
      "policies_enforcement_check",
      sql`${t.enforcement} IN ('AUDIT', 'WARN', 'BLOCK', 'TERMINATE')`,
    ),
    check("policies_scope_check", sql`jsonb_typeof(${t.scope}) = 'object'`),
    check("policies_metadata_check", sql`jsonb_typeof(${t.metadata}) = 'object'`),
    check("policies_active_version_check", sql`${t.activeVersion} >= 1`),
    check(
      "policies_effective_window_check",
      sql`${t.expiresAt} IS NULL OR ${t.effectiveAt} IS NULL OR ${t.expiresAt} > ${t.effectiveAt}`,
    ),
    check("policies_revision_check", sql`${t.revision} >= 0`),
    check(
      "policies_archived_check",
      sql`(${t.status} = 'ARCHIVED') = (${t.archivedAt} IS NOT NULL)`,
    ),
    tenantReference("policies", t.tenantId),
    tenantIsolation(),
  ],
).enableRLS();
