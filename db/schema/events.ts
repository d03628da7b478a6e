import { sql } from "drizzle-orm";
import { check, index, jsonb, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import { tenantIsolation, tenantReference } from "./tenant-rls.js";

/**
 * The audit trail of management changes: who (`actorType`/`actorId`), what (`action`,
 * e.g. `policy.activated`), on what (`targetType`/`targetId`), and details such as
 * version hashes. Append-only: `fulcrum_app` has SELECT and INSERT only.
 */
export const events = pgTable(
  "events",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    actorType: text("actor_type", { enum: ["user", "api_key", "system"] }).notNull(),
    actorId: text("actor_id"),
    action: text("action").notNull(),
    targetType: text("target_type").notNull(),
    targetId: text("target_id"),
    details: jsonb("details").$type<Record<string, unknown>>().notNull().default({}),
    occurredAt: timestamp("occurred_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index("events_tenant_id_occurred_at_idx").on(t.tenantId, t.occurredAt),
    index("events_tenant_id_target_idx").on(t.tenantId, t.targetType, t.targetId),
    check("events_actor_type_check", sql`${t.actorType} IN ('user', 'api_key', 'system')`),
    check("events_action_check", sql`${t.action} ~ '^[a-z][a-z0-9_.]{0,99}$'`),
    check("events_target_type_check", sql`length(${t.targetType}) BETWEEN 1 AND 100`),
    check("events_details_check", sql`jsonb_typeof(${t.details}) = 'object'`),
    tenantReference("events", t.tenantId),
    tenantIsolation(),
  ],
).enableRLS();
