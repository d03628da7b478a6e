import { events } from "../../../db/schema/index.js";
import { actorOf, type Principal } from "../auth/principal.js";
import type { Tx } from "../db/tenant-transaction.js";

export interface AuditEntry {
  /** Dotted lower-case verb, e.g. `policy.version_activated`. */
  action: string;
  targetType: "tenant" | "user" | "api_key" | "policy" | "policy_version";
  targetId: string;
  /** What changed: version numbers and hashes, changed fields. Never a secret. */
  details?: Record<string, unknown>;
}

/**
 * Appends one row to the tenant's audit trail (`events`) inside the transaction that
 * makes the change, so the change and its record commit or roll back together.
 */
export async function recordAudit(
  tx: Tx,
  tenantId: string,
  principal: Principal,
  entry: AuditEntry,
): Promise<void> {
  const actor = actorOf(principal);
  // The caller's user and role at the time, nested so an entry's own fields (a created
  // user's role, say) can never be overwritten by them.
  const details =
    principal.kind === "tenant_key"
      ? { ...entry.details, actor: { user_id: principal.userId, role: principal.role } }
      : { ...entry.details, actor: { platform_admin: true } };
  await tx.insert(events).values({
    tenantId,
    actorType: actor.actorType,
    actorId: actor.actorId,
    action: entry.action,
    targetType: entry.targetType,
    targetId: entry.targetId,
    details,
  });
}
