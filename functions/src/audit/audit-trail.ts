import { uuidv7 } from "../../../core/ids/uuidv7.js";
import { events } from "../../../db/schema/index.js";
import { actorOf, type Principal } from "../auth/principal.js";
import type { Tx } from "../db/tenant-transaction.js";
import { managementEvent, stageManagementEvent } from "../events/management-events.js";

export interface AuditEntry {
  /** Dotted lower-case verb, e.g. `policy.version_activated`. */
  action: string;
  targetType:
    | "tenant"
    | "user"
    | "api_key"
    | "policy"
    | "policy_version"
    | "budget"
    | "model_price"
    | "webhook";
  targetId: string;
  /** What changed: version numbers and hashes, changed fields. Never a secret. */
  details?: Record<string, unknown>;
}

/**
 * Appends one row to the tenant's audit trail (`events`) inside the transaction that
 * makes the change, so the change and its record commit or roll back together.
 *
 * The row's id is a UUIDv7 minted here, and the same change is staged as a
 * MANAGEMENT_CHANGE event with that id (events/management-events.ts): published to
 * JetStream after the commit, so the event processor's copy of it in PostgreSQL
 * (`ON CONFLICT (id) DO NOTHING`) is this row, not a second one.
 */
export async function recordAudit(
  tx: Tx,
  tenantId: string,
  principal: Principal,
  entry: AuditEntry,
): Promise<void> {
  const actor = actorOf(principal);
  // The caller at the time: the key's user and role, the key, and the user who created
  // the key (an admin may mint a key acting as someone else, another admin included, so
  // the key's user alone could hide who acted). Nested under `actor` so an entry's own
  // fields (a created user's role, say) can never be overwritten by them, and an entry
  // cannot forge it: `actor` is always the principal's.
  const details = { ...entry.details, actor: auditActor(principal) };
  const record = {
    id: uuidv7(),
    tenantId,
    actorType: actor.actorType,
    actorId: actor.actorId,
    action: entry.action,
    targetType: entry.targetType,
    targetId: entry.targetId,
    details,
  };
  const [row] = await tx.insert(events).values(record).returning({ occurredAt: events.occurredAt });
  stageManagementEvent(managementEvent({ ...record, occurredAt: row?.occurredAt ?? new Date() }));
}

/** The `actor` object of an audit row's details. */
export function auditActor(principal: Principal): Record<string, unknown> {
  if (principal.kind !== "tenant_key") return { platform_admin: true };
  return {
    user_id: principal.userId,
    role: principal.role,
    key_id: principal.keyId,
    key_created_by: principal.keyCreatedBy,
  };
}
