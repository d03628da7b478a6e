import { sql } from "drizzle-orm";
import { check, index, pgPolicy, pgTable, text, timestamp, uuid } from "drizzle-orm/pg-core";
import {
  AUTH_ROLE,
  apiKeyAuthentication,
  sameTenantReference,
  tenantIsolation,
  tenantReference,
} from "./tenant-rls.js";
import { users } from "./users.js";

export const apiKeyScopes = ["check", "manage"] as const;

/**
 * The secret is never stored: only its SHA-256 (lower-case hex) and a visible prefix.
 * A key acts as `userId`, whose role decides what it may do. Found by hash, before the
 * tenant is known, only through `fulcrum_authenticate_api_key(text)` (migration 0003).
 */
export const apiKeys = pgTable(
  "api_keys",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenantId: uuid("tenant_id").notNull(),
    name: text("name").notNull(),
    prefix: text("prefix").notNull(),
    keyHash: text("key_hash").notNull().unique("api_keys_key_hash_key"),
    scopes: text("scopes", { enum: apiKeyScopes }).array().notNull(),
    createdBy: uuid("created_by"),
    createdAt: timestamp("created_at", { withTimezone: true }).notNull().defaultNow(),
    expiresAt: timestamp("expires_at", { withTimezone: true }),
    revokedAt: timestamp("revoked_at", { withTimezone: true }),
    lastUsedAt: timestamp("last_used_at", { withTimezone: true }),
    /** The user the key acts as (0003). */
    userId: uuid("user_id").notNull(),
  },
  (t) => [
    sameTenantReference("api_keys_created_by_fkey", t.tenantId, t.createdBy, users),
    sameTenantReference("api_keys_user_id_fkey", t.tenantId, t.userId, users),
    index("api_keys_tenant_id_created_at_idx").on(t.tenantId, t.createdAt),
    index("api_keys_tenant_id_user_id_idx").on(t.tenantId, t.userId),
    check("api_keys_name_check", sql`length(${t.name}) BETWEEN 1 AND 200`),
    check("api_keys_prefix_check", sql`length(${t.prefix}) BETWEEN 4 AND 32`),
    check("api_keys_key_hash_check", sql`${t.keyHash} ~ '^[0-9a-f]{64}$'`),
    check(
      "api_keys_scopes_check",
      sql`cardinality(${t.scopes}) >= 1 AND ${t.scopes} <@ ARRAY['check', 'manage']::text[]`,
    ),
    tenantReference("api_keys", t.tenantId),
    tenantIsolation(),
    apiKeyAuthentication(),
    pgPolicy("api_key_authentication_last_used", {
      as: "permissive",
      for: "update",
      to: AUTH_ROLE,
      using: sql`true`,
      withCheck: sql`true`,
    }),
  ],
).enableRLS();
