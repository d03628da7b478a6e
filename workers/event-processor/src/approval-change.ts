/**
 * What an event changes in PostgreSQL `approvals`. The edge creates an approval in Redis
 * (its decision cannot wait for PostgreSQL) and announces it with an APPROVAL_REQUESTED
 * event whose payload is the row (edge/src/approvals/approval-event.ts); the processor
 * inserts it here, with the approval id as primary key, so a redelivered event inserts
 * nothing. A decision ALLOWed because an approval was used (reason APPROVED) marks that
 * approval consumed. Pure: the governance writer runs what this returns under the
 * event's tenant.
 */

import type { JsonObject, JsonValue } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { isUuid } from "../../../core/ids/uuid.js";
import { decisionUuid } from "../../../core/ids/uuidv7.js";
import { type Event, EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { DecisionReason } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";

export interface ApprovalRow {
  id: string;
  tenantId: string;
  /** Only when they are UUIDs; the writer keeps them only when the row exists (same tenant). */
  envelopeId: string | undefined;
  policyId: string | undefined;
  workflowId: string | null;
  actionName: string;
  reason: string | null;
  argumentsHash: string | null;
  decisionId: string | null;
  ruleId: string | null;
  requestedBy: string | null;
  reasons: string[];
  context: Record<string, JsonValue>;
  createdAt: Date;
  expiresAt: Date;
}

export type ApprovalChange =
  | { kind: "requested"; eventId: string; tenantId: string; row: ApprovalRow }
  | { kind: "consumed"; eventId: string; tenantId: string; approvalId: string; at: Date };

export type ApprovalOutcome =
  | { kind: "change"; change: ApprovalChange }
  | { kind: "skip"; reason: string }
  | undefined;

const MAX_TEXT = 1000;

export function approvalChange(event: Event): ApprovalOutcome {
  if (event.eventType === EventType.APPROVAL_REQUESTED) return requested(event);
  if (event.details.case !== "decision") return undefined;
  const decision = event.details.value;
  if (decision.reason !== DecisionReason.APPROVED) return undefined;
  const approvalId = decision.approvalId;
  if (!approvalId || !isUuid(approvalId) || !isUuid(event.tenantId) || !event.timestamp) {
    return { kind: "skip", reason: "APPROVED decision without a usable approval id" };
  }
  return {
    kind: "change",
    change: {
      kind: "consumed",
      eventId: event.eventId,
      tenantId: event.tenantId.toLowerCase(),
      approvalId: approvalId.toLowerCase(),
      at: timestampDate(event.timestamp),
    },
  };
}

function requested(event: Event): ApprovalOutcome {
  const p: JsonObject = event.payload ?? {};
  const approvalId = str(p.approval_id);
  if (!isUuid(approvalId)) return skip("approval_id is not a UUID");
  if (!isUuid(event.tenantId)) return skip("tenant_id is not a UUID");
  const expiresAt = new Date(str(p.expires_at));
  const createdAt = event.timestamp ? timestampDate(event.timestamp) : undefined;
  if (!createdAt || Number.isNaN(expiresAt.getTime()) || expiresAt <= createdAt) {
    return skip("expires_at is missing or not after the event's timestamp");
  }
  const toolNames = strings(p.tool_names);
  const reasons = strings(p.reasons).map((r) => r.slice(0, MAX_TEXT));
  const hash = str(p.arguments_hash).toLowerCase();
  const decisionId = decisionUuid(str(p.decision_id));
  const envelopeId = str(p.envelope_id) || event.envelopeId;
  const policyId = str(p.policy_id) || event.policyResult?.policyId || "";
  const actionName = (str(p.action) || toolNames.join(",") || "action").slice(0, 200);
  const context: Record<string, JsonValue> = {};
  if (toolNames.length) context.tool_names = toolNames.slice(0, 64);
  const policyIds = strings(p.policy_ids);
  if (policyIds.length) context.policy_ids = policyIds.slice(0, 64);
  if (str(p.decision_id)) context.decision_id = str(p.decision_id);
  if (envelopeId) context.envelope_id = envelopeId;
  if (policyId) context.policy_id = policyId;
  context.event_id = event.eventId;
  return {
    kind: "change",
    change: {
      kind: "requested",
      eventId: event.eventId,
      tenantId: event.tenantId.toLowerCase(),
      row: {
        id: approvalId.toLowerCase(),
        tenantId: event.tenantId.toLowerCase(),
        envelopeId: isUuid(envelopeId) ? envelopeId.toLowerCase() : undefined,
        policyId: isUuid(policyId) ? policyId.toLowerCase() : undefined,
        workflowId: (str(p.workflow_id) || event.workflowId || null)?.slice(0, 256) ?? null,
        actionName,
        reason: reasons[0] ?? null,
        argumentsHash: /^[0-9a-f]{64}$/.test(hash) ? hash : null,
        decisionId: isUuid(decisionId) ? decisionId.toLowerCase() : null,
        ruleId: str(p.rule_id).slice(0, 256) || event.policyResult?.ruleId || null,
        requestedBy: str(p.requested_by).slice(0, 256) || null,
        reasons: reasons.slice(0, 64),
        context,
        createdAt,
        expiresAt,
      },
    },
  };
}

function skip(reason: string): ApprovalOutcome {
  return { kind: "skip", reason: `approval not recorded: ${reason}` };
}

function str(value: JsonValue | undefined): string {
  return typeof value === "string" ? value : "";
}

function strings(value: JsonValue | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string") : [];
}
