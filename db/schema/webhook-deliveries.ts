import { sql } from "drizzle-orm";
import { check, index, integer, pgTable, text, timestamp, unique, uuid } from "drizzle-orm/pg-core";
import { sameTenantReference, tenantIsolation, tenantReference } from "./tenant-rls.js";
import { webhooks } from "./webhooks.js";

export const webhookDeliveryStatuses = ["PENDING", "DELIVERED", "FAILED"] as const;

/** One event's delivery to one webhook, upserted on every attempt. */
export const webhookDeliveries = pgTable(
  "webhook_deliveries",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    webhookId: uuid("webhook_id").notNull(),
    eventId: uuid("event_id").notNull(),
    eventType: text("event_type").notNull(),
    status: text("status", { enum: webhookDeliveryStatuses }).notNull().default("PENDING"),
    attempts: integer("attempts").notNull().default(0),
    lastStatusCode: integer("last_status_code"),
    lastError: text("last_error"),
    nextAttemptAt: timestamp("next_attempt_at", { withTimezone: true }),
    deliveredAt: timestamp("delivered_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    unique("webhook_deliveries_webhook_id_event_id_key").on(t.webhookId, t.eventId),
    sameTenantReference(
      "webhook_deliveries_webhook_id_fkey",
      t.tenantId,
      t.webhookId,
      webhooks,
    ).onDelete("cascade"),
    index("webhook_deliveries_tenant_id_webhook_id_created_at_idx").on(
      t.tenantId,
      t.webhookId,
      t.createdAt,
    ),
    check("webhook_deliveries_event_type_check", sql`length(${t.eventType}) BETWEEN 1 AND 100`),
    check(
      "webhook_deliveries_status_check",
      sql`${t.status} IN ('PENDING', 'DELIVERED', 'FAILED')`,
    ),
    check("webhook_deliveries_attempts_check", sql`${t.attempts} >= 0`),
    tenantReference("webhook_deliveries", t.tenantId),
    tenantIsolation(),
  ],
).enableRLS();
