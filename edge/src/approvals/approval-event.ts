import type { JsonObject } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { newEvent } from "../../../core/audit/event-codec.js";
import { uuidv7 } from "../../../core/ids/uuidv7.js";
import { type Event, EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { Decision } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";

/** What the event processor needs to record a new approval (approvals row, id = approvalId). */
export interface ApprovalRequest {
  approvalId: string;
  tenantId: string;
  argumentsHash: string;
  decisionId: string;
  /** The API key that asked. */
  requestedBy: string;
  action: string;
  toolNames: readonly string[];
  reasons: readonly string[];
  policyIds: readonly string[];
  /** The first REQUIRE_APPROVAL rule, `<policy>/<rule>` parts. */
  policyId: string;
  ruleId: string;
  workflowId: string;
  envelopeId: string;
  requestedAtMs: number;
  expiresAtMs: number;
}

/**
 * The APPROVAL_REQUESTED audit event of a newly created approval. Its payload (snake
 * case, JSON) is the contract with the event processor (workers/), which inserts the
 * approvals row from it; no request text is in it (only the arguments' hash).
 */
export function approvalRequestedEvent(r: ApprovalRequest): Event {
  const payload: JsonObject = {
    approval_id: r.approvalId,
    arguments_hash: r.argumentsHash,
    decision_id: r.decisionId,
    requested_by: r.requestedBy,
    action: r.action,
    tool_names: [...r.toolNames],
    reasons: [...r.reasons],
    policy_ids: [...r.policyIds],
    policy_id: r.policyId,
    rule_id: r.ruleId,
    workflow_id: r.workflowId,
    envelope_id: r.envelopeId,
    expires_at: new Date(r.expiresAtMs).toISOString(),
  };
  return newEvent({
    eventId: uuidv7(r.requestedAtMs),
    tenantId: r.tenantId,
    // Event.execution_id is required: the envelope when there is one, else the approval.
    executionId: r.envelopeId || r.approvalId,
    envelopeId: r.envelopeId,
    workflowId: r.workflowId,
    eventType: EventType.APPROVAL_REQUESTED,
    timestamp: timestampFromMs(r.requestedAtMs),
    source: "fulcrum-edge",
    payload,
    policyResult: {
      policyId: r.policyId,
      ruleId: r.ruleId,
      decision: Decision.REQUIRE_APPROVAL,
      reason: r.reasons[0] ?? "",
      decisionId: r.decisionId,
    },
  });
}
