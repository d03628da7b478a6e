/**
 * A decision of the edge as an audit {@link Event}: one event per decision, its id a
 * UUIDv7 minted here (the producer), typed by the verdict so the processor can tell
 * governance-relevant decisions (violations, approvals) without decoding details.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  DecisionDetailsSchema,
  type Event,
  EventType,
} from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import {
  Decision,
  DecisionReason,
  FailureMode,
  Phase,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { uuidv7 } from "../ids/uuidv7.js";
import type { DecisionEvent } from "./decision-event.js";
import { newEvent } from "./event-codec.js";

const EVENT_TYPE_OF: Record<DecisionEvent["decision"], EventType> = {
  ALLOW: EventType.POLICY_EVALUATED,
  WARN: EventType.POLICY_WARNING,
  DENY: EventType.POLICY_VIOLATION,
  REQUIRE_APPROVAL: EventType.POLICY_APPROVAL_REQUIRED,
};

const DECISION_OF: Record<DecisionEvent["decision"], Decision> = {
  ALLOW: Decision.ALLOW,
  WARN: Decision.WARN,
  DENY: Decision.DENY,
  REQUIRE_APPROVAL: Decision.REQUIRE_APPROVAL,
};

export function decisionToEvent(d: DecisionEvent, source = "fulcrum-edge"): Event {
  const decidedAt = new Date(d.decided_at);
  const firstMatch = d.matched_rules[0];
  return newEvent({
    // The decision id is `dec_<UUIDv7>`: the event shares its UUID, so a retried hand-off
    // of the same decision is the same event.
    eventId: d.decision_id.startsWith("dec_")
      ? d.decision_id.slice(4)
      : uuidv7(decidedAt.getTime()),
    tenantId: d.tenant_id,
    executionId: d.envelope_id ?? "",
    envelopeId: d.envelope_id ?? "",
    workflowId: d.workflow_id ?? "",
    eventType: EVENT_TYPE_OF[d.decision],
    timestamp: timestampFromDate(decidedAt),
    source,
    policyResult: {
      policyId: firstMatch?.policy_id ?? d.policies[0]?.policy_id ?? "",
      ruleId: firstMatch?.rule_id ?? "",
      decision: DECISION_OF[d.decision],
      reason: d.reason,
      decisionId: d.decision_id,
    },
    details: {
      case: "decision",
      value: create(DecisionDetailsSchema, {
        method: d.method,
        reason:
          DecisionReason[d.reason as keyof typeof DecisionReason] ?? DecisionReason.UNSPECIFIED,
        apiKeyId: d.api_key_id,
        dryRun: d.dry_run,
        phase: phaseOf(d.phase),
        userId: d.user_id ?? "",
        modelId: d.model_id ?? "",
        toolNames: d.tool_names ?? [],
        action: d.action ?? "",
        policies: d.policies.map((p) => ({
          policyId: p.policy_id,
          version: p.version,
          decision: DECISION_OF[p.decision],
          dryRun: p.dry_run,
        })),
        matchedRules: d.matched_rules.map((r) => ({ policyId: r.policy_id, ruleId: r.rule_id })),
        rateLimitsExceeded: d.rate_limits_exceeded,
        ...(d.failure_mode
          ? {
              failureMode: {
                component: d.failure_mode.component,
                mode:
                  d.failure_mode.mode === "FAIL_OPEN"
                    ? FailureMode.FAIL_OPEN
                    : FailureMode.FAIL_CLOSED,
                message: d.failure_mode.message,
              },
            }
          : {}),
        evaluationDurationMs: d.evaluation_duration_ms,
        approvalId: d.approval_id ?? "",
      }),
    },
  });
}

/** "PRE_TOOL_CALL" or "PHASE_PRE_TOOL_CALL" → Phase.PRE_TOOL_CALL. */
function phaseOf(phase: string | undefined): Phase {
  if (!phase) return Phase.UNSPECIFIED;
  const key = phase.replace(/^PHASE_/, "") as keyof typeof Phase;
  return typeof Phase[key] === "number" ? (Phase[key] as Phase) : Phase.UNSPECIFIED;
}
