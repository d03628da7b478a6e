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
