import { sql } from "drizzle-orm";
import { boolean, check, index, pgTable, text, timestamp, unique, uuid } from "drizzle-orm/pg-core";
import { tenantIsolation, tenantReference } from "./tenant-rls.js";

/**
 * A tenant's webhook endpoint. `secret` is the HMAC key deliveries are signed with: needed in
 * clear to sign, so it is not hashed; row-level security keeps it to its tenant.
 */
export const webhooks = pgTable(
  "webhooks",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    url: text("url").notNull(),
    /** Event type names (EventType without the prefix); empty: the defaults (core/notifications/webhook-events.ts). */
    eventTypes: text("event_types").array().notNull().default(sql`'{}'`),
    description: text("description").notNull().default(""),
    secret: text("secret").notNull(),
    enabled: boolean("enabled").notNull().default(true),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    unique("webhooks_tenant_id_id_key").on(t.tenantId, t.id),
    index("webhooks_tenant_id_created_at_idx").on(t.tenantId, t.createdAt),
    check("webhooks_url_check", sql`${t.url} ~ '^https?://' AND length(${t.url}) <= 2048`),
    check("webhooks_description_check", sql`length(${t.description}) <= 1000`),
    check("webhooks_secret_check", sql`length(${t.secret}) BETWEEN 16 AND 200`),
    tenantReference("webhooks", t.tenantId),
    tenantIsolation(),
  ],
).enableRLS();
