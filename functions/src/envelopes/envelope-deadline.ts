/**
 * An envelope past its deadline_at is TIMEOUT, whether or not the transition has been
 * written yet. The write happens at the next UpdateEnvelopeStatus of the envelope or the
 * next reconciliation (timeOutEnvelopes, envelope-timeout.ts); until then every read
 * reports the status that write will store (`asOf`), so a read never has side effects and
 * never answers RUNNING for an execution the edge already refuses (the edge checks
 * deadlineMs itself).
 */
import type { EnvelopeRow } from "./envelope-rows.js";

/** The statuses a deadline ends: the ones a TIMEOUT transition may come from. */
const TIMED = new Set<EnvelopeRow["status"]>(["RUNNING", "PAUSED"]);

export function isOverdue(row: EnvelopeRow, now: Date): row is EnvelopeRow & { deadlineAt: Date } {
  return TIMED.has(row.status) && row.deadlineAt !== null && row.deadlineAt <= now;
}

/** The TIMEOUT transition's reason (the event's payload and status_reason). */
export function timeoutReason(deadline: Date): string {
  return `timed out at ${deadline.toISOString()}`;
}

/**
 * The row as the TIMEOUT transition will store it when it is overdue: status TIMEOUT,
 * its reason, completed at the deadline (the execution time stops there: the edge
 * admitted nothing after it). Any other row is answered unchanged.
 */
export function asOf(row: EnvelopeRow, now: Date): EnvelopeRow {
  if (!isOverdue(row, now)) return row;
  return {
    ...row,
    status: "TIMEOUT",
    statusReason: timeoutReason(row.deadlineAt),
    completedAt: row.deadlineAt,
  };
}
