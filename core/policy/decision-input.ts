import type { EvaluationContext } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { Phase } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { DecisionInput, PolicyContext } from "./tenant-config.js";

/**
 * Turns a validated EvaluationContext into the `input` document of the Rego
 * `decision` entrypoint. Enum values travel as their short names
 * (`PRE_TOOL_CALL`).
 *
 * Empty and default fields are left out: opa-wasm serialises the input as JSON
 * on every evaluation (~12 ns per byte), and the Rego reads a missing field
 * exactly as its empty value ("", [], {}, false; an unset phase is ""). The
 * cost is the one number with a default: a missing `estimated_cost_usd` is 0
 * in the Rego too (checked against COST_CONTROL limits like an explicit 0), so
 * 0 is omitted as well. A non-finite cost still travels (as JSON null: never
 * checked), as it always did; the edge's validation rejects it anyway.
 */
export function toPolicyContext(context: EvaluationContext | undefined): PolicyContext {
  const out: PolicyContext = {};
  if (!context) return out;
  if (context.tenantId) out.tenant_id = context.tenantId;
  if (context.workflowId) out.workflow_id = context.workflowId;
  if (context.envelopeId) out.envelope_id = context.envelopeId;
  if (context.userId) out.user_id = context.userId;
  if (context.userRoles.length > 0) out.user_roles = [...context.userRoles];
  if (context.phase !== Phase.UNSPECIFIED) out.phase = Phase[context.phase];
  if (context.modelId) out.model_id = context.modelId;
  if (context.toolNames.length > 0) out.tool_names = [...context.toolNames];
  if (context.inputText) out.input_text = context.inputText;
  if (context.outputText) out.output_text = context.outputText;
  if (Object.keys(context.attributes).length > 0) out.attributes = { ...context.attributes };
  if (context.estimatedCostUsd !== 0) out.estimated_cost_usd = context.estimatedCostUsd;
  if (context.action) out.action = context.action;
  return out;
}

/** The `input` document; `policy_ids` and `dry_run` only when they say something. */
export function toDecisionInput(
  context: EvaluationContext | undefined,
  policyIds: readonly string[],
  dryRun: boolean,
): DecisionInput {
  const input: DecisionInput = {};
  if (policyIds.length > 0) input.policy_ids = [...policyIds];
  if (dryRun) input.dry_run = true;
  input.context = toPolicyContext(context);
  return input;
}
