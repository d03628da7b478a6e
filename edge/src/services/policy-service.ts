import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { newDecisionId } from "../../../core/ids/uuidv7.js";
import { isAllowed, strongestDecision } from "../../../core/policy/decision-order.js";
import {
  toAction,
  toDecision,
  toEvaluationResult,
  toMatchedRule,
} from "../../../core/policy/decision-result.js";
import { EvaluationResultSchema } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  CheckPolicyResponseSchema,
  EvaluatePoliciesResponseSchema,
  EvaluatePolicyResponseSchema,
  type PolicyService,
} from "../../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { type Evaluation, type EvaluationDeps, evaluate, requestTenant } from "./evaluate.js";

/**
 * The evaluation RPCs of PolicyService, served at the edge. The management
 * RPCs are not registered here and answer Unimplemented.
 */
export function policyEvaluationService(
  deps: EvaluationDeps,
): Partial<ServiceImpl<typeof PolicyService>> {
  return {
    async evaluatePolicy(req) {
      const tenantId = requestTenant("", req.context);
      const ids = req.policyId ? [req.policyId] : [];
      const evaluation = await evaluate(deps, tenantId, ids, req.context, req.dryRun);
      const result = req.policyId ? singleResult(evaluation) : combinedResult(evaluation);
      return create(EvaluatePolicyResponseSchema, { result, decisionId: newDecisionId() });
    },

    async evaluatePolicies(req) {
      const tenantId = requestTenant("", req.context);
      const evaluation = await evaluate(deps, tenantId, req.policyIds, req.context, req.dryRun);
      const timing = timingOf(evaluation);
      let results = evaluation.output.results;
      if (req.stopOnDeny) {
        const firstDeny = results.findIndex((r) => r.decision === "DENY");
        if (firstDeny >= 0) results = results.slice(0, firstDeny + 1);
      }
      return create(EvaluatePoliciesResponseSchema, {
        results: results.map((r) => toEvaluationResult(r, timing)),
        finalDecision: toDecision(strongestDecision(results.map((r) => r.decision))),
        actions: results.flatMap((r) => r.actions.map(toAction)),
        reasons: results.flatMap((r) => r.matched_rules.map((m) => m.reason)),
        evaluationDurationMs: evaluation.durationMs,
        evaluatedAt: timestampFromMs(evaluation.evaluatedAtMs),
        decisionId: newDecisionId(),
      });
    },

    async checkPolicy(req) {
      const tenantId = requestTenant(req.tenantId, req.context, "tenant_id");
      const ids = req.policyId ? [req.policyId] : [];
      const evaluation = await evaluate(deps, tenantId, ids, req.context, false);
      const { output } = evaluation;
      return create(CheckPolicyResponseSchema, {
        decision: toDecision(output.decision),
        allowed: isAllowed(output.decision),
        matchedRules: output.matched_rules.map(toMatchedRule),
        reasons: output.reasons,
        actions: output.actions.map(toAction),
        policyVersion: req.policyId ? (output.results[0]?.policy_version ?? "") : "",
        evaluationDurationMs: evaluation.durationMs,
        decisionId: newDecisionId(),
      });
    },
  };
}

function timingOf(evaluation: Evaluation) {
  return { evaluatedAtMs: evaluation.evaluatedAtMs, durationMs: evaluation.durationMs };
}

function singleResult(evaluation: Evaluation) {
  const [result] = evaluation.output.results;
  // evaluate() guarantees one result per named policy.
  if (!result) throw new Error("no result for the named policy");
  return toEvaluationResult(result, timingOf(evaluation));
}

/** All of the tenant's active policies folded into one result, as guard() expects. */
function combinedResult(evaluation: Evaluation) {
  const { output } = evaluation;
  const versions = Object.fromEntries(
    output.results.map((r) => [`policy_version.${r.policy_id}`, r.policy_version]),
  );
  const anyDryRun = output.results.some((r) => r.dry_run);
  return create(EvaluationResultSchema, {
    decision: toDecision(output.decision),
    wouldDecide: toDecision(strongestDecision(output.results.map((r) => r.would_decide))),
    dryRun: anyDryRun,
    matchedRules: output.matched_rules.map(toMatchedRule),
    actions: output.actions.map(toAction),
    reasons: output.reasons,
    message:
      output.results.length === 0
        ? "no active policies for this tenant"
        : `${output.results.length} active policies evaluated`,
    metadata: versions,
    evaluatedAt: timestampFromMs(evaluation.evaluatedAtMs),
    evaluationDurationMs: evaluation.durationMs,
  });
}
