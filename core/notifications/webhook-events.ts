/**
 * Which audit events a webhook can receive, and the JSON body each becomes. Shared by
 * WebhookService (which refuses other types) and the notifier (whose consumer filters
 * the stream to exactly these subjects), so the two never disagree.
 *
 * The body is `{event_id, type, tenant_id, occurred_at, data}`; `type` is the event
 * type's short name (`BUDGET_WARNING`), `data` the event's governance details (budget,
 * policy result, decision summary, approval payload) in proto JSON field names. Never
 * labels, token info or anything else an SDK wrote free-form beyond the payload of these
 * platform events.
 */
import { type JsonObject, type JsonValue, toJson } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  BudgetInfoSchema,
  type Event,
  EventType,
  PolicyResultSchema,
} from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { DecisionReason } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { EVENTS_SUBJECT_PREFIX, eventTypeName, eventTypeToken } from "../audit/event-subject.js";

/** The event types a webhook may subscribe to. */
export const WEBHOOK_EVENT_TYPES: readonly EventType[] = [
  EventType.BUDGET_WARNING,
  EventType.BUDGET_EXCEEDED,
  EventType.BUDGET_RESET,
  EventType.APPROVAL_REQUESTED,
  EventType.APPROVAL_GRANTED,
  EventType.APPROVAL_REJECTED,
  EventType.APPROVAL_EXPIRED,
  EventType.POLICY_VIOLATION,
];

/** What a webhook with no event types receives: threshold crossings and pending approvals. */
export const DEFAULT_WEBHOOK_EVENT_TYPES: readonly EventType[] = [
  EventType.BUDGET_WARNING,
  EventType.BUDGET_EXCEEDED,
  EventType.APPROVAL_REQUESTED,
];

export function isWebhookEventType(type: EventType): boolean {
  return WEBHOOK_EVENT_TYPES.includes(type);
}

/** The stream subjects of every webhook event type, across tenants (consumer filter). */
export function webhookSubjects(): string[] {
  return WEBHOOK_EVENT_TYPES.map((type) => `${EVENTS_SUBJECT_PREFIX}.*.${eventTypeToken(type)}`);
}

/**
 * Whether a webhook subscribed to `subscribed` (short names as stored in
 * `webhooks.event_types`; empty = the defaults) wants an event of `type`.
 */
export function webhookWants(subscribed: readonly string[], type: EventType): boolean {
  if (subscribed.length === 0) return DEFAULT_WEBHOOK_EVENT_TYPES.includes(type);
  return subscribed.includes(eventTypeName(type));
}

export interface WebhookBody {
  event_id: string;
  type: string;
  tenant_id: string;
  occurred_at: string;
  data: JsonObject;
}

/** The JSON body POSTed for `event`. */
export function webhookBody(event: Event): WebhookBody {
  const data: JsonObject = {};
  if (event.executionId) data.execution_id = event.executionId;
  if (event.envelopeId) data.envelope_id = event.envelopeId;
  if (event.workflowId) data.workflow_id = event.workflowId;
  if (event.details.case === "budget") {
    data.budget = toJson(BudgetInfoSchema, event.details.value, {
      useProtoFieldName: true,
    }) as JsonValue;
  }
  if (event.details.case === "decision") {
    // What was decided about, never the request's text (the edge does not put it in events).
    const d = event.details.value;
    const decision: JsonObject = { reason: DecisionReason[d.reason] ?? "UNSPECIFIED" };
    if (d.toolNames.length) decision.tool_names = [...d.toolNames];
    if (d.action) decision.action = d.action;
    if (d.modelId) decision.model_id = d.modelId;
    if (d.approvalId) decision.approval_id = d.approvalId;
    data.decision = decision;
  }
  if (event.policyResult) {
    data.policy_result = toJson(PolicyResultSchema, event.policyResult, {
      useProtoFieldName: true,
    }) as JsonValue;
  }
  // The payload of these platform events (an approval's id, hash, reasons, expiry).
  if (event.payload && Object.keys(event.payload).length > 0) data.payload = event.payload;
  return {
    event_id: event.eventId,
    type: eventTypeName(event.eventType),
    tenant_id: event.tenantId,
    occurred_at: (event.timestamp ? timestampDate(event.timestamp) : new Date(0)).toISOString(),
    data,
  };
}
