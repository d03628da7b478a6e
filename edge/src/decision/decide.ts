import type { DecisionEvent, DecisionReasonName } from "../../../core/audit/decision-event.js";
import type { ApiKeyRecord } from "../../../core/distribution/key-records.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { newDecisionId } from "../../../core/ids/uuidv7.js";
import type { Metrics } from "../../../core/observability/metrics.js";
import { toPolicyContext } from "../../../core/policy/decision-input.js";
import type {
  ActionOutput,
  DecisionOutput,
  MatchedRuleOutput,
} from "../../../core/policy/tenant-config.js";
import { selectPolicies } from "../../../core/policy-bundle/evaluate-bundle.js";
import type { RateLimitOutcome } from "../../../core/rate-limit/rate-limit-outcome.js";
import type { RateLimitSpec } from "../../../core/rate-limit/rate-limit-spec.js";
import { checkRateLimits, type RateLimiters } from "../../../core/rate-limit/rate-limiter.js";
import {
  type EvaluationContext,
  Phase,
} from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { TenantBundle, TenantBundleSource } from "../distribution/tenant-bundle.js";
import type { BundleEvaluator } from "../evaluation/bundle-evaluator.js";

export interface DecisionDeps {
  bundles: TenantBundleSource;
  evaluator: BundleEvaluator;
  limiters: RateLimiters;
  metrics: Metrics;
  now: () => number;
}

export interface DecisionRequest {
  method: "CheckPolicy" | "EvaluatePolicy" | "EvaluatePolicies";
  caller: ApiKeyRecord;
  /** A tenant id the request names (top-level or in the context): must be the key's. */
  namedTenants: readonly string[];
  policyIds: readonly string[];
  context: EvaluationContext | undefined;
  dryRun: boolean;
}

export interface AppliedFailure {
  component: "rate_limit";
  mode: "FAIL_OPEN" | "FAIL_CLOSED";
  message: string;
}

/** One decision, ready to be rendered into any of the three responses. */
export interface EdgeDecision {
  decisionId: string;
  tenantId: string;
  /** The policies' combined output, with a rate-limit or fail-closed DENY folded in. */
  output: DecisionOutput;
  reason: DecisionReasonName;
  rateLimits: RateLimitOutcome["results"];
  /** The specs the results refer to (the bundle's). */
  rateLimitSpecs: readonly RateLimitSpec[];
  failure?: AppliedFailure;
  /** Version of every policy evaluated, by policy id. */
  policyVersions: Record<string, string>;
  evaluatedAtMs: number;
  durationMs: number;
}

/**
 * The edge's decision path, shared by CheckPolicy, EvaluatePolicy and
 * EvaluatePolicies: the tenant from the key, its bundle, rate limits and evaluation
 * (concurrently: one Redis round trip and one evaluation), then the verdict:
 *
 * - a rate limit exceeded → DENY, reason RATE_LIMITED (the policies' findings stay
 *   in matched rules; the exceeded limits are added as RATE_LIMIT rules);
 * - Redis failing a FAIL_CLOSED limit → DENY, reason FAIL_CLOSED; failing only
 *   FAIL_OPEN limits → the policies decide and `failure` says so;
 * - otherwise the policies decide (reason NO_ACTIVE_POLICIES when there are none).
 *
 * A request-level dry run counts against no limit.
 */
export async function decide(deps: DecisionDeps, req: DecisionRequest): Promise<EdgeDecision> {
  const tenantId = req.caller.tenant_id;
  for (const named of req.namedTenants) {
    if (named !== "" && named !== tenantId) {
      throw new FulcrumError(
        "PermissionDenied",
        "tenant_id names another tenant than the API key's: leave it empty (the key decides) or use a key of that tenant",
      );
    }
  }
  const bundle = await deps.bundles.get(tenantId);
  // Before anything is counted: an unknown policy id spends no rate-limit budget.
  selectPolicies(bundle.policies, req.policyIds);

  const context = { ...toPolicyContext(req.context), tenant_id: tenantId };
  const evaluatedAtMs = deps.now();
  const [evaluation, limits] = await Promise.all([
    deps.evaluator.evaluate(bundle, {
      context,
      policyIds: req.policyIds,
      dryRun: req.dryRun,
      nowMs: evaluatedAtMs,
    }),
    req.dryRun || bundle.rateLimits.length === 0
      ? undefined
      : checkRateLimits(deps.limiters, bundle.rateLimits, {
          tenantId,
          apiKeyId: req.caller.key_id,
          workflowId: req.context?.workflowId || undefined,
          toolNames: req.context?.toolNames ?? [],
          tokens: req.context?.estimatedTokens || undefined,
          phase: context.phase,
        }),
  ]);

  let output = evaluation.output;
  let reason: DecisionReasonName =
    bundle.policies.length === 0 && req.policyIds.length === 0 ? "NO_ACTIVE_POLICIES" : "POLICY";
  let failure: AppliedFailure | undefined;
  if (limits?.failure) {
    failure = {
      component: "rate_limit",
      mode: limits.failure.mode,
      message: `rate limits could not be checked (${limits.failure.error}); the tenant's failure mode ${limits.failure.mode} applied`,
    };
    deps.metrics.increment("fulcrum_policy_failure_mode_total", {
      component: "rate_limit",
      mode: limits.failure.mode,
    });
  }
  if (limits && !limits.allowed) {
    if (failure?.mode === "FAIL_CLOSED") {
      reason = "FAIL_CLOSED";
      output = denied(output, [], failure.message);
    } else {
      reason = "RATE_LIMITED";
      output = denied(output, exceededRules(bundle, limits), "");
    }
  }
  deps.metrics.increment("fulcrum_policy_decisions_total", { decision: output.decision, reason });
  deps.metrics.increment(
    "fulcrum_policy_evaluation_duration_seconds_sum",
    {},
    evaluation.durationMs / 1000,
  );
  deps.metrics.increment("fulcrum_policy_evaluation_duration_seconds_count");

  return {
    decisionId: newDecisionId(),
    tenantId,
    output,
    reason,
    rateLimits: limits?.results ?? [],
    rateLimitSpecs: bundle.rateLimits,
    ...(failure ? { failure } : {}),
    policyVersions: Object.fromEntries(
      evaluation.output.results.map((r) => [r.policy_id, r.policy_version]),
    ),
    evaluatedAtMs,
    durationMs: evaluation.durationMs,
  };
}

/** The exceeded limits as matched RATE_LIMIT rules (one per limit), with retry hints. */
function exceededRules(
  bundle: TenantBundle,
  limits: RateLimitOutcome,
): (MatchedRuleOutput & { policy_id: string })[] {
  const rules: (MatchedRuleOutput & { policy_id: string })[] = [];
  const seen = new Set<string>();
  for (const result of limits.results) {
    if (!result.exceeded || seen.has(result.spec_id)) continue;
    seen.add(result.spec_id);
    const [policyId = "", ruleId = result.spec_id] = result.spec_id.split("/");
    const policy = bundle.policies.find((p) => p.policy_id === policyId);
    const retry = Math.ceil((result.retry_after_ms ?? 0) / 1000);
    rules.push({
      policy_id: policyId,
      rule_id: ruleId,
      rule_name: policy?.name ? `${policy.name}: ${ruleId}` : ruleId,
      rule_type: "RATE_LIMIT",
      priority: policy?.priority ?? 0,
      matched_conditions: [`${result.spec_id} (${result.scope}) limit ${result.limit}`],
      action: "DENY",
      reason: `rate limit ${result.spec_id} exceeded: ${result.limit} per window; retry in ${retry} s`,
    });
  }
  return rules;
}

/** `output` turned into a DENY: extra matched rules and reasons first, then the policies'. */
function denied(
  output: DecisionOutput,
  rules: (MatchedRuleOutput & { policy_id: string })[],
  failureReason: string,
): DecisionOutput {
  const reasons = [...rules.map((r) => r.reason), ...(failureReason ? [failureReason] : [])];
  const actions: ActionOutput[] = reasons.map((message) => ({
    type: "DENY",
    message,
    severity: "HIGH",
    terminal: true,
  }));
  return {
    ...output,
    decision: "DENY",
    would_decide: "DENY",
    matched_rules: [...rules, ...output.matched_rules],
    reasons: [...reasons, ...output.reasons],
    actions: [...actions, ...output.actions],
  };
}

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
    evaluation_duration_ms: decision.durationMs,
  };
}
