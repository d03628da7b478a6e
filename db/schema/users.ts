import { sql } from "drizzle-orm";
import { check, pgTable, text, timestamp, unique, uuid } from "drizzle-orm/pg-core";
import { apiKeyAuthentication, tenantIsolation, tenantReference } from "./tenant-rls.js";

export const userRoles = ["admin", "policy_author", "viewer"] as const;

export const users = pgTable(
  "users",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    /** Lower-case (a CHECK), so the unique (tenant_id, email) is case-insensitive. */
    email: text("email").notNull(),
    displayName: text("display_name").notNull().default(""),
    role: text("role", { enum: userRoles }).notNull(),
    disabledAt: timestamp("disabled_at", { withTimezone: true }),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp("updated_at", { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    unique("users_tenant_id_id_key").on(t.tenantId, t.id),
    unique("users_tenant_id_email_key").on(t.tenantId, t.email),
    check(
      "users_email_check",
      sql`${t.email} = lower(${t.email}) AND ${t.email} ~ '^[^@[:space:]]+@[^@[:space:]]+$' AND length(${t.email}) <= 320`,
    ),
    check("users_role_check", sql`${t.role} IN ('admin', 'policy_author', 'viewer')`),
    tenantReference("users", t.tenantId),
    tenantIsolation(),
    apiKeyAuthentication(),
  ],
).enableRLS();
