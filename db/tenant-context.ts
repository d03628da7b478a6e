import { sql } from "drizzle-orm";
import type { NeonDatabase } from "drizzle-orm/neon-serverless";
import { isUuid } from "../core/ids/uuid.js";

/** The transaction handed to `withTenant`'s callback. */
export type TenantTx<TSchema extends Record<string, unknown>> = Parameters<
  Parameters<NeonDatabase<TSchema>["transaction"]>[0]
>[0];

/** The session setting the `tenant_isolation` policies read (migration 0002). */
export const TENANT_SETTING = "fulcrum.current_tenant";

export class InvalidTenantIdError extends Error {
  constructor(tenantId: unknown) {
    super(`tenant id must be a UUID, got ${JSON.stringify(String(tenantId)).slice(0, 80)}`);
    this.name = "InvalidTenantIdError";
  }
}

/**
 * Runs `fn` in one transaction whose tenant is `tenantId`: `set_config(…, true)` makes the
 * setting transaction-local, so it ends with the transaction and never leaks to the next
 * user of the pooled connection. Row-level security then shows and accepts only that
 * tenant's rows. The only way application code should touch a tenant table.
 *
 * @throws InvalidTenantIdError before touching the database when `tenantId` is no UUID.
 * @example const rows = await withTenant(db, tenantId, (tx) => tx.select().from(policies));
 */
export async function withTenant<TSchema extends Record<string, unknown>, T>(
  db: NeonDatabase<TSchema>,
  tenantId: string,
  fn: (tx: TenantTx<TSchema>) => Promise<T>,
): Promise<T> {
  if (typeof tenantId !== "string" || !isUuid(tenantId)) {
    throw new InvalidTenantIdError(tenantId);
  }
  return db.transaction(async (tx) => {
    await tx.execute(sql`select set_config(${TENANT_SETTING}, ${tenantId.toLowerCase()}, true)`);
    return fn(tx);
  });
}
