import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import type { DecisionEventSink } from "../../../core/audit/decision-event.js";
import type { Logger } from "../../../core/logging/logger.js";
import { isAllowed } from "../../../core/policy/decision-order.js";
import {
  toAction,
  toDecision,
  toEvaluationResult,
  toMatchedRule,
} from "../../../core/policy/decision-result.js";
import type { PolicyResultOutput } from "../../../core/policy/tenant-config.js";
import { EvaluationResultSchema } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  CheckPolicyResponseSchema,
  EvaluatePoliciesResponseSchema,
  EvaluatePolicyResponseSchema,
  type PolicyService,
} from "../../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { caller, waitUntilKey } from "../auth/edge-context.js";
import {
  type DecisionDeps,
  type DecisionRequest,
  decide,
  type EdgeDecision,
} from "../decision/decide.js";
import { decisionEvent } from "../decision/decision-event.js";
import { decisionExtras } from "../decision/render.js";

export interface PolicyServiceDeps extends DecisionDeps {
  events: DecisionEventSink;
  logger: Logger;
}

/**
 * The evaluation RPCs of PolicyService, served at the edge (the management RPCs
 * answer Unimplemented here; the management API serves them). Every decision is
 * handed to the audit sink after the response (`waitUntil`).
 */
export function policyEvaluationService(
  deps: PolicyServiceDeps,
): Partial<ServiceImpl<typeof PolicyService>> {
  async function run(
    ctx: HandlerContext,
    method: DecisionRequest["method"],
    fields: Omit<DecisionRequest, "method" | "caller" | "namedTenants"> & { tenantId?: string },
  ): Promise<EdgeDecision> {
    const request: DecisionRequest = {
      method,
      caller: caller(ctx),
      namedTenants: [fields.tenantId ?? "", fields.context?.tenantId ?? ""],
      policyIds: fields.policyIds,
      context: fields.context,
      dryRun: fields.dryRun,
    };
    const decision = await decide(deps, request);
    const event = decisionEvent(request, decision);
    const waitUntil = ctx.values.get(waitUntilKey);
    for (const task of decision.afterResponse) waitUntil(task());
    waitUntil(
      deps.events.publish(event, decision.events).catch((error) => {
        deps.metrics.increment("fulcrum_policy_decision_events_failed_total");
        // The last copy of the event: the whole record goes to the log (it holds no
        // request text or secret), so it can be recovered from the Worker's logs.
        deps.logger.error("decision event not handed off", {
          event,
          extra: decision.events.map((e) => ({
            id: e.eventId,
            type: e.eventType,
            payload: e.payload,
          })),
          error,
        });
      }),
    );
    return decision;
  }

  return {
    async evaluatePolicy(req, ctx) {
      const ids = req.policyId ? [req.policyId] : [];
      const decision = await run(ctx, "EvaluatePolicy", {
        policyIds: ids,
        context: req.context,
        dryRun: req.dryRun,
      });
      const result = req.policyId ? singleResult(decision) : combinedResult(decision);
      return create(EvaluatePolicyResponseSchema, { result, decisionId: decision.decisionId });
    },

    async evaluatePolicies(req, ctx) {
      const decision = await run(ctx, "EvaluatePolicies", {
        policyIds: req.policyIds,
        context: req.context,
        dryRun: req.dryRun,
      });
      const { output } = decision;
      let results: readonly PolicyResultOutput[] = output.results;
      if (req.stopOnDeny) {
        const firstDeny = results.findIndex((r) => r.decision === "DENY");
        if (firstDeny >= 0) results = results.slice(0, firstDeny + 1);
      }
      return create(EvaluatePoliciesResponseSchema, {
        results: results.map((r) => toEvaluationResult(r, timingOf(decision))),
        // Stopping at the first DENY cannot change the strongest decision.
        finalDecision: toDecision(output.decision),
        actions: output.actions.map(toAction),
        reasons: output.reasons,
        evaluationDurationMs: decision.durationMs,
        evaluatedAt: timestampFromMs(decision.evaluatedAtMs),
        decisionId: decision.decisionId,
        ...decisionExtras(decision),
      });
    },

    async checkPolicy(req, ctx) {
      const decision = await run(ctx, "CheckPolicy", {
        tenantId: req.tenantId,
        policyIds: req.policyId ? [req.policyId] : [],
        context: req.context,
        dryRun: false,
      });
      const { output } = decision;
      return create(CheckPolicyResponseSchema, {
        decision: toDecision(output.decision),
        allowed: isAllowed(output.decision),
        matchedRules: output.matched_rules.map(toMatchedRule),
        reasons: output.reasons,
        actions: output.actions.map(toAction),
        policyVersion: req.policyId ? (decision.policyVersions[req.policyId] ?? "") : "",
        policyVersions: decision.policyVersions,
        evaluationDurationMs: decision.durationMs,
        evaluatedAt: timestampFromMs(decision.evaluatedAtMs),
        decisionId: decision.decisionId,
        ...decisionExtras(decision),
      });
    },
  };
}

function timingOf(decision: EdgeDecision) {
  return { evaluatedAtMs: decision.evaluatedAtMs, durationMs: decision.durationMs };
}

/**
 * The named policy's result; a rate-limit, budget, envelope or fail-closed DENY, an
 * approval consumed or rejected, overrides its verdict.
 */
function singleResult(decision: EdgeDecision) {
  const [result] = decision.output.results;
  // decide() guarantees one result per named policy.
  if (!result) throw new Error("no result for the named policy");
  const proto = toEvaluationResult(result, timingOf(decision));
  const extras = decisionExtras(decision);
  // A rejected approval keeps reason POLICY but turns the verdict into DENY.
  if (decision.reason === "POLICY" && decision.output.decision === result.decision) {
    return create(EvaluationResultSchema, { ...proto, ...extras });
  }
  return create(EvaluationResultSchema, {
    ...proto,
    decision: toDecision(decision.output.decision),
    matchedRules: decision.output.matched_rules.map(toMatchedRule),
    actions: decision.output.actions.map(toAction),
    reasons: decision.output.reasons,
    message: decision.output.reasons[0] ?? proto.message,
    ...extras,
  });
}

/** All of the tenant's active policies folded into one result, as guard() expects. */
function combinedResult(decision: EdgeDecision) {
  const { output } = decision;
  const versions = Object.fromEntries(
    Object.entries(decision.policyVersions).map(([id, v]) => [`policy_version.${id}`, v]),
  );
  return create(EvaluationResultSchema, {
    decision: toDecision(output.decision),
    wouldDecide: toDecision(output.would_decide),
    dryRun: output.results.some((r) => r.dry_run),
    matchedRules: output.matched_rules.map(toMatchedRule),
    actions: output.actions.map(toAction),
    reasons: output.reasons,
    message: messageOf(decision),
    metadata: versions,
    evaluatedAt: timestampFromMs(decision.evaluatedAtMs),
    evaluationDurationMs: decision.durationMs,
    ...decisionExtras(decision),
  });
}

function messageOf(decision: EdgeDecision): string {
  const n = decision.output.results.length;
  switch (decision.reason) {
    case "NO_ACTIVE_POLICIES":
      return "no active policies for this tenant";
    case "RATE_LIMITED":
      return `rate limited: ${decision.output.reasons[0] ?? "a rate limit was exceeded"}`;
    case "FAIL_CLOSED":
      return decision.failure?.message ?? "a dependency failed and the failure mode denied";
    case "BUDGET_EXCEEDED":
      return `budget exceeded: ${decision.output.reasons[0] ?? "a budget refused the reservation"}`;
    case "ENVELOPE":
      return `envelope refused: ${decision.output.reasons[0] ?? "the envelope refused the call"}`;
    case "APPROVED":
      return decision.output.reasons[0] ?? "approved";
    default:
      return `${n} active ${n === 1 ? "policy" : "policies"} evaluated`;
  }
}
