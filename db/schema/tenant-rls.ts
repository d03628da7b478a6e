import { sql } from "drizzle-orm";
import { foreignKey, type PgColumn, pgPolicy } from "drizzle-orm/pg-core";
import { tenants } from "./tenants.js";

/**
 * The tenant of the current transaction, as `db/tenant-context.ts` sets it; NULL (so no row
 * matches) when unset or empty.
 */
export const currentTenant = sql`NULLIF(current_setting('fulcrum.current_tenant', true), '')::uuid`;

/** The `tenant_isolation` policy every tenant table has (migration 0002). */
export const tenantIsolation = () =>
  pgPolicy("tenant_isolation", {
    as: "permissive",
    for: "all",
    to: "public",
    using: sql`tenant_id = ${currentTenant}`,
    withCheck: sql`tenant_id = ${currentTenant}`,
  });

/**
 * The role `fulcrum_authenticate_api_key(text)` runs as (migration 0003): NOLOGIN, it may read
 * every tenant's api_keys, users and tenants and update api_keys.last_used_at.
 */
export const AUTH_ROLE = "fulcrum_auth";

/** `api_key_authentication` (0003): fulcrum_auth reads every row; the function filters. */
export const apiKeyAuthentication = () =>
  pgPolicy("api_key_authentication", {
    as: "permissive",
    for: "select",
    to: AUTH_ROLE,
    using: sql`true`,
  });

/** `tenant_id → tenants(id)`, named as PostgreSQL names it (`<table>_tenant_id_fkey`). */
export const tenantReference = (table: string, tenantId: PgColumn) =>
  foreignKey({
    name: `${table}_tenant_id_fkey`,
    columns: [tenantId],
    foreignColumns: [tenants.id],
  });

/**
 * A reference to another row of the same tenant: `(tenant_id, <column>) →
 * <target>(tenant_id, id)`. Foreign-key checks bypass row-level security, so a
 * plain `<column> → id` would accept the id of another tenant's row.
 */
export const sameTenantReference = (
  name: string,
  tenantId: PgColumn,
  column: PgColumn,
  target: { tenantId: PgColumn; id: PgColumn },
) =>
  foreignKey({ name, columns: [tenantId, column], foreignColumns: [target.tenantId, target.id] });
