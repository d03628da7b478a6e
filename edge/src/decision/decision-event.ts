import type { DecisionEvent } from "../../../core/audit/decision-event.js";
import { Phase } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { DecisionRequest, EdgeDecision } from "./decide.js";

/** The audit record of a decision (core/audit/decision-event.ts); no request text. */
export function decisionEvent(req: DecisionRequest, decision: EdgeDecision): DecisionEvent {
  const ctx = req.context;
  return {
    decision_id: decision.decisionId,
    tenant_id: decision.tenantId,
    api_key_id: req.caller.key_id,
    method: req.method,
    decided_at: new Date(decision.evaluatedAtMs).toISOString(),
    decision: decision.output.decision,
    reason: decision.reason,
    dry_run: req.dryRun,
    policies: decision.output.results.map((r) => ({
      policy_id: r.policy_id,
      version: r.policy_version,
      decision: r.decision,
      dry_run: r.dry_run,
    })),
    matched_rules: decision.output.matched_rules.map((m) => ({
      policy_id: m.policy_id,
      rule_id: m.rule_id,
    })),
    rate_limits_exceeded: decision.rateLimits.filter((r) => r.exceeded).map((r) => r.spec_id),
    ...(decision.failure ? { failure_mode: decision.failure } : {}),
    ...(ctx?.workflowId ? { workflow_id: ctx.workflowId } : {}),
    ...(ctx?.envelopeId ? { envelope_id: ctx.envelopeId } : {}),
    ...(ctx?.userId ? { user_id: ctx.userId } : {}),
    ...(ctx?.phase ? { phase: Phase[ctx.phase] } : {}),
    ...(ctx?.modelId ? { model_id: ctx.modelId } : {}),
    ...(ctx?.toolNames.length ? { tool_names: [...ctx.toolNames] } : {}),
    ...(ctx?.action ? { action: ctx.action } : {}),
    ...(decision.approvalId ? { approval_id: decision.approvalId } : {}),
    evaluation_duration_ms: decision.durationMs,
  };
}
