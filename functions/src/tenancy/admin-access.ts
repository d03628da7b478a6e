import { and, eq, isNull, sql } from "drizzle-orm";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { users } from "../../../db/schema/index.js";
import type { Tx } from "../db/tenant-transaction.js";

/**
 * The anti-lock-out rule: a tenant must always keep an enabled admin, and that admin a
 * usable `manage` key. Only admins manage users and keys, and only the platform operator
 * can create tenants — there is no RPC that hands a locked-out tenant a new key — so a
 * change that would leave neither (demoting or disabling the last admin, revoking the
 * last admin manage key) is refused with FailedPrecondition.
 *
 * Call inside the transaction that makes the change, before making it. It locks the
 * tenant's enabled admins (FOR UPDATE), so two admins demoting each other, or revoking
 * each other's keys, at the same time are serialised and cannot both succeed.
 */
export async function assertAdminAccessRemains(
  tx: Tx,
  change: { withoutUser?: string; withoutKey?: string },
): Promise<void> {
  const admins = await tx
    .select({ id: users.id })
    .from(users)
    .where(and(eq(users.role, "admin"), isNull(users.disabledAt)))
    .for("update");
  const remaining = admins.filter((a) => a.id !== change.withoutUser);
  if (change.withoutUser && remaining.length === 0) {
    throw new FulcrumError(
      "FailedPrecondition",
      "this would leave the tenant without an active admin: make another user an admin first",
    );
  }
  const withoutUser = change.withoutUser ?? "00000000-0000-0000-0000-000000000000";
  const withoutKey = change.withoutKey ?? "00000000-0000-0000-0000-000000000000";
  // before: usable admin manage keys now; after: those left once the change is made.
  const { rows } = await tx.execute<{ before: number; after: number }>(sql`
    select count(*)::int as before,
           (count(*) filter (where u.id <> ${withoutUser}::uuid and k.id <> ${withoutKey}::uuid))::int as after
      from api_keys k
      join users u on u.tenant_id = k.tenant_id and u.id = k.user_id
     where u.role = 'admin' and u.disabled_at is null
       and k.revoked_at is null and (k.expires_at is null or k.expires_at > now())
       and 'manage' = any (k.scopes)`);
  // Refused only when the change is what removes the last way in (a tenant that has no
  // admin key already is not made worse by, say, revoking a viewer's key).
  const counts = rows[0] ?? { before: 0, after: 0 };
  if (counts.before > 0 && counts.after === 0) {
    throw new FulcrumError(
      "FailedPrecondition",
      "this would leave no active admin with a usable manage API key, locking the tenant out: create a manage key for another admin first",
    );
  }
}
