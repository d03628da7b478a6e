/**
 * The envelope lifecycle: which status may follow which, and the audit event each
 * transition emits. One table, used by CreateEnvelope and UpdateEnvelopeStatus.
 *
 *   PENDING    → AUTHORIZED | TERMINATED
 *   AUTHORIZED → RUNNING | TERMINATED
 *   RUNNING    → PAUSED | COMPLETED | FAILED | TERMINATED | BUDGET_EXCEEDED |
 *                POLICY_VIOLATION | TIMEOUT
 *   PAUSED     → RUNNING | TERMINATED | TIMEOUT
 *   COMPLETED, FAILED, TERMINATED, BUDGET_EXCEEDED, POLICY_VIOLATION, TIMEOUT: final.
 *
 * Event types (payload `{from, to, reason}` on every one):
 * - created (→ PENDING) and authorized (→ AUTHORIZED): CUSTOM, custom_type
 *   `envelope.created` / `envelope.authorized`. The EventType enum has no "admitted"
 *   value, and EXECUTION_STARTED is kept for the moment the execution actually starts
 *   running, so a consumer counting started executions is not fooled by envelopes that
 *   were authorized and never run.
 * - AUTHORIZED → RUNNING: EXECUTION_STARTED; PAUSED → RUNNING: EXECUTION_RESUMED.
 * - → PAUSED: EXECUTION_PAUSED; → COMPLETED: EXECUTION_COMPLETED; → FAILED: EXECUTION_FAILED.
 * - → TERMINATED, BUDGET_EXCEEDED, POLICY_VIOLATION: EXECUTION_TERMINATED (stopped from
 *   outside the execution; the payload's `to` says why).
 * - → TIMEOUT: EXECUTION_FAILED (the execution did not finish; `to` says TIMEOUT).
 */
import {
  type EnvelopeStatusName,
  isEnvelopeActive,
  isEnvelopeFinal,
} from "../../../core/budget/envelope-record.js";
import { EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";

export type { EnvelopeStatusName };

const NEXT: Readonly<Record<EnvelopeStatusName, readonly EnvelopeStatusName[]>> = {
  PENDING: ["AUTHORIZED", "TERMINATED"],
  AUTHORIZED: ["RUNNING", "TERMINATED"],
  RUNNING: [
    "PAUSED",
    "COMPLETED",
    "FAILED",
    "TERMINATED",
    "BUDGET_EXCEEDED",
    "POLICY_VIOLATION",
    "TIMEOUT",
  ],
  PAUSED: ["RUNNING", "TERMINATED", "TIMEOUT"],
  COMPLETED: [],
  FAILED: [],
  TERMINATED: [],
  BUDGET_EXCEEDED: [],
  POLICY_VIOLATION: [],
  TIMEOUT: [],
};

/** The statuses that may follow `from` (empty for a final status). */
export function allowedNext(from: EnvelopeStatusName): readonly EnvelopeStatusName[] {
  return NEXT[from];
}

export function canTransition(from: EnvelopeStatusName, to: EnvelopeStatusName): boolean {
  return NEXT[from].includes(to);
}

/** Final (no transition out): core's list, which the edge's record and SQL filters share. */
export const isTerminal = isEnvelopeFinal;

/** Statuses under which the edge admits calls of the envelope (and a child may be opened). */
export const isActive = isEnvelopeActive;

export interface TransitionEventType {
  eventType: EventType;
  /** Set for CUSTOM events. */
  customType?: string;
}

/** The event a transition to `to` (from `from`, null for the creation) emits. */
export function transitionEventType(
  from: EnvelopeStatusName | null,
  to: EnvelopeStatusName,
): TransitionEventType {
  switch (to) {
    case "PENDING":
      return { eventType: EventType.CUSTOM, customType: "envelope.created" };
    case "AUTHORIZED":
      return { eventType: EventType.CUSTOM, customType: "envelope.authorized" };
    case "RUNNING":
      return {
        eventType: from === "PAUSED" ? EventType.EXECUTION_RESUMED : EventType.EXECUTION_STARTED,
      };
    case "PAUSED":
      return { eventType: EventType.EXECUTION_PAUSED };
    case "COMPLETED":
      return { eventType: EventType.EXECUTION_COMPLETED };
    case "FAILED":
    case "TIMEOUT":
      return { eventType: EventType.EXECUTION_FAILED };
    case "TERMINATED":
    case "BUDGET_EXCEEDED":
    case "POLICY_VIOLATION":
      return { eventType: EventType.EXECUTION_TERMINATED };
  }
}
