/**
 * The audit event of one envelope transition (types: envelope-transitions.ts). Staged on
 * the transaction that makes the change, so it is published to JetStream after the
 * commit (events/management-events.ts) and never for a change that rolled back.
 */
import type { JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { newEvent } from "../../../core/audit/event-codec.js";
import { uuidv7 } from "../../../core/ids/uuidv7.js";
import type { Event } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { MANAGEMENT_EVENT_SOURCE, stageManagementEvent } from "../events/management-events.js";
import type { EnvelopeRow } from "./envelope-rows.js";
import { type EnvelopeStatusName, transitionEventType } from "./envelope-transitions.js";

export interface Transition {
  from: EnvelopeStatusName | null;
  to: EnvelopeStatusName;
  reason: string;
  /** The key that made the change (payload `actor_key_id`). */
  keyId: string;
  at: Date;
}

export function envelopeEvent(row: EnvelopeRow, t: Transition): Event {
  const { eventType, customType } = transitionEventType(t.from, t.to);
  const payload: JsonObject = {
    from: t.from,
    to: t.to,
    reason: t.reason,
    actor_key_id: t.keyId,
    ...(row.parentEnvelopeId ? { parent_envelope_id: row.parentEnvelopeId } : {}),
  };
  const trace = (row.traceContext ?? {}) as Record<string, unknown>;
  return newEvent({
    eventId: uuidv7(),
    tenantId: row.tenantId,
    executionId: row.executionId,
    envelopeId: row.id,
    workflowId: row.workflowId,
    eventType,
    customType: customType ?? "",
    timestamp: timestampFromDate(t.at),
    payload,
    source: MANAGEMENT_EVENT_SOURCE,
    traceId: typeof trace.trace_id === "string" ? trace.trace_id : "",
    spanId: typeof trace.span_id === "string" ? trace.span_id : "",
    labels: { envelope_status: t.to },
  });
}

/** Where a transition's event goes (stageTransition, or a collector outside a call). */
export type Emit = (row: EnvelopeRow, t: Transition) => void;

/**
 * Stages the transition's event on the running transaction: published after the commit
 * by the Connect call's outbox. Outside a call there is no outbox, so background work
 * (envelope-timeout.ts) collects with its own Emit and publishes itself.
 */
export function stageTransition(row: EnvelopeRow, t: Transition): void {
  stageManagementEvent(envelopeEvent(row, t));
}
