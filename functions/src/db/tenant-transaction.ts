import type { Db, Schema } from "../../../db/client.js";
import { type ConstraintMessages, toDatabaseError } from "../../../db/database-errors.js";
import { type TenantTx, withTenant } from "../../../db/tenant-context.js";
import { withStagedEvents } from "../events/management-events.js";

export type Tx = TenantTx<Schema>;

/**
 * Every read and write of a management call: one transaction in the caller's tenant
 * (row-level security does the isolation), with database failures translated once.
 * A FulcrumError thrown inside `fn` rolls the transaction back and reaches the caller
 * unchanged, so a call either changes everything it meant to or nothing. Management
 * events its audit rows staged go to the call's outbox only once it has committed
 * (events/management-events.ts).
 *
 * @example const policy = await inTenant(deps.db, caller.tenantId, (tx) => loadPolicy(tx, id));
 */
export async function inTenant<T>(
  db: Db,
  tenantId: string,
  fn: (tx: Tx) => Promise<T>,
  messages?: ConstraintMessages,
): Promise<T> {
  try {
    return await withStagedEvents(() => withTenant(db, tenantId, fn));
  } catch (error) {
    throw toDatabaseError(error, messages);
  }
}
