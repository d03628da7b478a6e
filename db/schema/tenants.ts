import { sql } from "drizzle-orm";
import { check, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";

/**
 * Not granted to `fulcrum_app` at all: only the admin path reads or writes it, as
 * `fulcrum_platform` (SELECT, INSERT, UPDATE; migration 0003). No RLS.
 */
export const tenants = pgTable(
  "tenants",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    name: text("name").notNull(),
    slug: text("slug").notNull().unique("tenants_slug_key"),
    status: text("status", { enum: ["active", "suspended"] })
      .notNull()
      .default("active"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    check("tenants_name_check", sql`length(${t.name}) BETWEEN 1 AND 200`),
    check("tenants_slug_check", sql`${t.slug} ~ '^[a-z0-9][a-z0-9-]{1,62}$'`),
    check("tenants_status_check", sql`${t.status} IN ('active', 'suspended')`),
  ],
);
