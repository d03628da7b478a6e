/**
 * Reconciliation, per tenant: every RUNNING or PAUSED envelope past its deadline_at moves
 * to TIMEOUT through the write path UpdateEnvelopeStatus uses (apply-transition.ts):
 * EXECUTION_FAILED with reason "timed out at <deadline>", its open descendants
 * TERMINATED, the records of its tree rewritten after the commit. Reads report such an
 * envelope TIMEOUT before this runs (envelope-deadline.ts); this makes the row say so,
 * tells subscribers, and ends the descendants.
 *
 * Deepest envelopes first: when a child and an ancestor are both overdue, the child is
 * TIMEOUT by its own deadline — as reads reported it — rather than TERMINATED by the
 * ancestor's cascade.
 *
 * Runs outside a Connect call (no outbox), so the events are collected and published
 * here after each commit, like approval expiry's.
 */
import { sql } from "drizzle-orm";
import { envelopes } from "../../../db/schema/index.js";
import type { Event } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { publishAll } from "../events/management-events.js";
import { applyTransition } from "./apply-transition.js";
import { isOverdue, timeoutReason } from "./envelope-deadline.js";
import { envelopeEvent } from "./envelope-events.js";
import { publishEnvelopeTree } from "./envelope-records.js";
import { loadEnvelope } from "./envelope-rows.js";

export type EnvelopeTimeoutDeps = Pick<
  FunctionsDeps,
  "db" | "redis" | "budgetKeys" | "eventPublisher" | "metrics" | "logger"
>;

/** Overdue envelopes' ids, deepest first (then by deadline). */
async function overdue(deps: EnvelopeTimeoutDeps, tenantId: string, now: Date) {
  return inTenant(deps.db, tenantId, async (tx) => {
    const { rows } = await tx.execute<{ id: string }>(sql`
      WITH RECURSIVE up(id, deadline, anc) AS (
        SELECT id, deadline_at, parent_envelope_id FROM ${envelopes}
         WHERE status IN ('RUNNING', 'PAUSED') AND deadline_at <= ${now.toISOString()}::timestamptz
        UNION ALL
        SELECT up.id, up.deadline, p.parent_envelope_id
          FROM up JOIN ${envelopes} p ON p.id = up.anc
      )
      SELECT id::text AS id FROM up
       GROUP BY id, deadline ORDER BY count(*) DESC, deadline, id`);
    return rows.map((r) => r.id);
  });
}

/**
 * Times out what is overdue at `now`; returns how many envelopes it moved to TIMEOUT
 * (descendants ended by the cascade not counted). One envelope failing (e.g. Redis after
 * the commit) does not stop the others; the first error is thrown at the end.
 */
export async function timeOutEnvelopes(
  deps: EnvelopeTimeoutDeps,
  tenantId: string,
  now: Date,
): Promise<number> {
  let count = 0;
  let failure: unknown;
  for (const id of await overdue(deps, tenantId, now)) {
    try {
      const events: Event[] = [];
      const emit = (...args: Parameters<typeof envelopeEvent>) => {
        events.push(envelopeEvent(...args));
      };
      const row = await inTenant(deps.db, tenantId, async (tx) => {
        const current = await loadEnvelope(tx, id, { lock: true });
        // Finished, or timed out by an UpdateEnvelopeStatus, meanwhile.
        if (!isOverdue(current, now)) return null;
        const reason = timeoutReason(current.deadlineAt);
        return applyTransition(tx, current, { to: "TIMEOUT", reason, keyId: "", emit });
      });
      if (!row) continue;
      count++;
      await publishAll(deps.eventPublisher, deps.metrics, deps.logger, events);
      await publishEnvelopeTree(deps, tenantId, row.id);
    } catch (error) {
      failure ??= error;
    }
  }
  if (failure !== undefined) throw failure;
  return count;
}
