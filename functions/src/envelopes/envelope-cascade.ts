/**
 * What an envelope's transition means for the rest of its tree, inside the transaction
 * that makes it:
 *
 * - Ending (any final status) ends every open descendant: TERMINATED, reason
 *   "parent envelope <parent id> ended <parent's status>", each with its own
 *   EXECUTION_TERMINATED event. The edge checks only an envelope's own record, so a
 *   child left running under a finished parent would keep being admitted.
 * - Starting takes the earliest deadline among the ancestors when it comes before the
 *   envelope's own: a child's timeout is checked against its parent's length, not its
 *   parent's clock, so a child started late would otherwise outlive its parent.
 *
 * Lock order: the ended envelope first (the caller's lock), then its tree level by
 * level, each level in id order. Every writer of a tree locks top-down this way (a
 * child's own transition locks only the child, CreateEnvelope share-locks the parent),
 * so two of them never wait on each other in a cycle. Each level is read by a new
 * statement after the level above is locked, so a child committed by a concurrent
 * CreateEnvelope before its parent was locked is found, and one after it is refused.
 */
import { and, asc, inArray, sql } from "drizzle-orm";
import { ENVELOPE_OPEN_STATUSES } from "../../../core/budget/envelope-record.js";
import { envelopes } from "../../../db/schema/index.js";
import type { Tx } from "../db/tenant-transaction.js";
import { type Emit, stageTransition } from "./envelope-events.js";
import type { EnvelopeRow } from "./envelope-rows.js";
import type { EnvelopeStatusName } from "./envelope-transitions.js";

export interface CascadeCause {
  /** The envelope that reached a final status, already locked by the caller. */
  root: EnvelopeRow;
  keyId: string;
  /** The root's transition instant (text, µs kept); descendants end at the same one. */
  at: string;
  /** Where the events go; default: staged on the transaction. */
  emit?: Emit;
}

/** Ends every open descendant of `cause.root`; answers the rows it changed (top-down). */
export async function endDescendants(tx: Tx, cause: CascadeCause): Promise<EnvelopeRow[]> {
  const changed: EnvelopeRow[] = [];
  let parents = [cause.root.id];
  let parentStatus: EnvelopeStatusName = cause.root.status;
  const emit = cause.emit ?? stageTransition;
  while (parents.length > 0) {
    // FOR UPDATE rechecks the status filter after a wait: a child that finished by
    // itself meanwhile is left as it is.
    const open = await tx
      .select()
      .from(envelopes)
      .where(
        and(
          inArray(envelopes.parentEnvelopeId, parents),
          inArray(envelopes.status, ENVELOPE_OPEN_STATUSES),
        ),
      )
      .orderBy(asc(envelopes.id))
      .for("update");
    if (open.length === 0) break;
    // One instant for both columns, past each row's previous updated_at (records order on it).
    const at = sql`greatest(${cause.at}::timestamptz, ${envelopes.updatedAt} + interval '1 millisecond')`;
    const updated = await tx
      .update(envelopes)
      .set({
        status: "TERMINATED",
        statusReason: sql`'parent envelope ' || ${envelopes.parentEnvelopeId}::text || ' ended ' || ${parentStatus}::text`,
        updatedAt: at,
        completedAt: at,
      })
      .where(
        inArray(
          envelopes.id,
          open.map((r) => r.id),
        ),
      )
      .returning();
    const byId = new Map(updated.map((r) => [r.id, r]));
    for (const before of open) {
      const row = byId.get(before.id);
      if (!row) continue;
      emit(row, {
        from: before.status,
        to: "TERMINATED",
        reason: row.statusReason ?? "",
        keyId: cause.keyId,
        at: row.updatedAt,
      });
      changed.push(row);
    }
    parents = open.map((r) => r.id);
    parentStatus = "TERMINATED";
  }
  return changed;
}

/**
 * The earliest deadline_at among the ancestors of an envelope whose parent is
 * `parentId` (text, µs kept), or null when none has one.
 */
export async function ancestorDeadline(tx: Tx, parentId: string | null): Promise<string | null> {
  if (!parentId) return null;
  const { rows } = await tx.execute<{ deadline: string | null }>(sql`
    WITH RECURSIVE up(id, parent) AS (
      SELECT id, parent_envelope_id FROM ${envelopes} WHERE id = ${parentId}
      UNION ALL
      SELECT p.id, p.parent_envelope_id FROM up JOIN ${envelopes} p ON p.id = up.parent
    )
    SELECT min(e.deadline_at)::text AS deadline FROM ${envelopes} e JOIN up USING (id)`);
  return rows[0]?.deadline ?? null;
}
