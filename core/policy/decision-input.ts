import type { EvaluationContext } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { Phase } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { DecisionInput, PolicyContext } from "./tenant-config.js";

/**
 * Turns a validated EvaluationContext into the `input` document of the Rego
 * `decision` entrypoint. Enum values travel as their short names
 * (`PRE_TOOL_CALL`), an unset phase as the empty string.
 */
export function toPolicyContext(context: EvaluationContext | undefined): PolicyContext {
  return {
    tenant_id: context?.tenantId ?? "",
    workflow_id: context?.workflowId ?? "",
    envelope_id: context?.envelopeId ?? "",
    user_id: context?.userId ?? "",
    user_roles: [...(context?.userRoles ?? [])],
    phase: context && context.phase !== Phase.UNSPECIFIED ? Phase[context.phase] : "",
    model_id: context?.modelId ?? "",
    tool_names: [...(context?.toolNames ?? [])],
    input_text: context?.inputText ?? "",
    output_text: context?.outputText ?? "",
    attributes: { ...(context?.attributes ?? {}) },
    estimated_cost_usd: context?.estimatedCostUsd ?? 0,
    action: context?.action ?? "",
  };
}

export function toDecisionInput(
  context: EvaluationContext | undefined,
  policyIds: readonly string[],
  dryRun: boolean,
): DecisionInput {
  return { policy_ids: [...policyIds], dry_run: dryRun, context: toPolicyContext(context) };
}
