/**
 * One envelope transition inside the transaction that holds the envelope's row lock:
 * the single write path of UpdateEnvelopeStatus and of timeouts (envelope-timeout.ts),
 * so a timeout stores, emits and cascades exactly as a requested TIMEOUT would.
 *
 * - updated_at strictly increases (at least 1 ms past the previous value), so the edge
 *   record's `updatedAtMs` orders its copies (envelope-records.ts).
 * - The first RUNNING sets started_at and deadline_at (started_at + governance timeout,
 *   or an ancestor's earlier deadline); a resume (PAUSED → RUNNING) keeps both.
 * - A final status sets completed_at and ends every open descendant
 *   (envelope-cascade.ts). TIMEOUT completes at the deadline when it has passed: the
 *   execution time stops where the edge stopped admitting calls, and reads reported it
 *   so before the write (envelope-deadline.ts).
 *
 * The caller checks that the transition is allowed and publishes the records after the
 * commit.
 */
import { eq, sql } from "drizzle-orm";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { envelopes } from "../../../db/schema/index.js";
import type { Tx } from "../db/tenant-transaction.js";
import { ancestorDeadline, endDescendants } from "./envelope-cascade.js";
import { type Emit, stageTransition } from "./envelope-events.js";
import { governanceFromJson } from "./envelope-governance.js";
import type { EnvelopeRow } from "./envelope-rows.js";
import { type EnvelopeStatusName, isTerminal } from "./envelope-transitions.js";

export interface TransitionTo {
  to: EnvelopeStatusName;
  reason: string;
  /** The key that made the change; "" when no key did (a deadline passing). */
  keyId: string;
  /** Where the events go; default: staged on the transaction (a Connect call's outbox). */
  emit?: Emit;
}

export async function applyTransition(
  tx: Tx,
  current: EnvelopeRow,
  change: TransitionTo,
): Promise<EnvelopeRow> {
  const { to } = change;
  const emit = change.emit ?? stageTransition;
  // One instant for every column (µs kept as text), past the previous updated_at.
  const { rows } = await tx.execute<{ at: string }>(sql`
    SELECT greatest(clock_timestamp(), updated_at + interval '1 millisecond')::text AS at
      FROM ${envelopes} WHERE id = ${current.id}`);
  const at = rows[0]?.at;
  if (!at) throw new FulcrumError("Internal", `envelope ${current.id} vanished`);
  const now = sql`${at}::timestamptz`;
  const firstStart = to === "RUNNING" && current.startedAt === null;
  const timeoutMs = governanceFromJson(current.governance).timeoutMs;
  const own =
    timeoutMs === undefined
      ? sql`null::timestamptz`
      : sql`${now} + ${timeoutMs} * interval '1 millisecond'`;
  // least() skips nulls: no timeout and no ancestor deadline leaves none.
  const inherited = firstStart ? await ancestorDeadline(tx, current.parentEnvelopeId) : null;
  const completedAt = to === "TIMEOUT" ? sql`least(${now}, ${envelopes.deadlineAt})` : now;
  const [updated] = await tx
    .update(envelopes)
    .set({
      status: to,
      statusReason: change.reason || null,
      updatedAt: now,
      ...(firstStart
        ? { startedAt: now, deadlineAt: sql`least(${own}, ${inherited}::timestamptz)` }
        : {}),
      ...(isTerminal(to) ? { completedAt } : {}),
    })
    .where(eq(envelopes.id, current.id))
    .returning();
  if (!updated) throw new FulcrumError("Internal", `envelope ${current.id} vanished`);
  emit(updated, {
    from: current.status,
    to,
    reason: change.reason,
    keyId: change.keyId,
    at: updated.updatedAt,
  });
  if (isTerminal(to)) await endDescendants(tx, { root: updated, keyId: change.keyId, at, emit });
  return updated;
}
