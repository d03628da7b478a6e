import type { DecisionReasonName } from "../../../core/audit/decision-event.js";
import type { ApiKeyRecord } from "../../../core/distribution/key-records.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { newDecisionId } from "../../../core/ids/uuidv7.js";
import type { Metrics } from "../../../core/observability/metrics.js";
import { toPolicyContext } from "../../../core/policy/decision-input.js";
import type { DecisionOutput } from "../../../core/policy/tenant-config.js";
import { selectPolicies } from "../../../core/policy-bundle/evaluate-bundle.js";
import type { RateLimitOutcome } from "../../../core/rate-limit/rate-limit-outcome.js";
import type { RateLimitSpec } from "../../../core/rate-limit/rate-limit-spec.js";
import { checkRateLimits, type RateLimiters } from "../../../core/rate-limit/rate-limiter.js";
import type { Event } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { EvaluationContext } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { APPROVALS_METRIC, applyApproval } from "../approvals/apply-approval.js";
import type { ApprovalGate } from "../approvals/approval-gate.js";
import type { BudgetGate, BudgetOutcome } from "../budget/budget-gate.js";
import type { BudgetSubject } from "../budget/budget-plan.js";
import type { TenantBundleSource } from "../distribution/tenant-bundle.js";
import type { BundleEvaluator } from "../evaluation/bundle-evaluator.js";
import { denied, exceededRules } from "./verdict.js";

export interface DecisionDeps {
  bundles: TenantBundleSource;
  evaluator: BundleEvaluator;
  limiters: RateLimiters;
  metrics: Metrics;
  now: () => number;
  /** Budgets and envelopes (issue 6); absent: none apply. */
  budgets?: BudgetGate;
  /** Approvals of REQUIRE_APPROVAL decisions (issue 6); absent: none are created. */
  approvals?: ApprovalGate;
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
  component: "rate_limit" | "budget" | "approval";
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
  /** What budgets and the envelope said; absent when none apply (or a dry run). */
  budget?: BudgetOutcome;
  /** The approval created, pending, consumed or rejected for this call. */
  approvalId?: string;
  /** Audit events beside the decision's own (APPROVAL_REQUESTED). */
  events: Event[];
  /** Work for after the response (`waitUntil`): releasing a reservation the verdict did not use. */
  afterResponse: (() => Promise<void>)[];
}

/**
 * The edge's decision path, shared by CheckPolicy, EvaluatePolicy and
 * EvaluatePolicies: the tenant from the key; its bundle, BudgetSet (cached) and the
 * envelope the call names, read together; then rate limits, the budget reservation
 * and evaluation concurrently (one pipelined Redis round trip and one evaluation;
 * a tenant without budgets and envelope adds no round trip); then the verdict, first
 * match wins:
 *
 * - budgets or the envelope unreadable, or Redis failing a FAIL_CLOSED limit → DENY,
 *   reason FAIL_CLOSED (failing only FAIL_OPEN limits → `failure` says so);
 * - the envelope refuses (not running, past its deadline, model / tool not allowed)
 *   → DENY, reason ENVELOPE;
 * - a budget refuses the reservation → DENY, reason BUDGET_EXCEEDED (budget checks
 *   say which and why);
 * - a rate limit exceeded → DENY, reason RATE_LIMITED (the policies' findings stay
 *   in matched rules; the exceeded limits are added as RATE_LIMIT rules);
 * - otherwise the policies decide (reason NO_ACTIVE_POLICIES when there are none);
 *   a REQUIRE_APPROVAL goes through the approval step (apply-approval.ts): an
 *   approved retry is ALLOW, reason APPROVED.
 *
 * A final decision other than ALLOW / WARN releases the reservation after the
 * response. A request-level dry run counts against no limit and reserves nothing.
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
  const context = { ...toPolicyContext(req.context), tenant_id: tenantId };
  const budgets = req.dryRun ? undefined : deps.budgets;
  // Read in the same tick as the bundle's revalidation: one pipelined round trip.
  const startedAtMs = deps.now();
  const preparing = budgets?.prepare(
    tenantId,
    budgetSubject(req.context, context.phase),
    startedAtMs,
  );
  const bundle = await deps.bundles.get(tenantId);
  // Before anything is counted: an unknown policy id spends no rate-limit budget.
  selectPolicies(bundle.policies, req.policyIds);

  const evaluatedAtMs = deps.now();
  const reserving = preparing?.then((prep) => budgets?.reserve(tenantId, prep, evaluatedAtMs));
  let evaluation: Awaited<ReturnType<BundleEvaluator["evaluate"]>>;
  let limits: RateLimitOutcome | undefined;
  let budget: BudgetOutcome | undefined;
  try {
    [evaluation, limits, budget] = await Promise.all([
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
      reserving,
    ]);
  } catch (error) {
    // The evaluation failed: a reservation made beside it is given back at once.
    const made = await reserving?.catch(() => undefined);
    if (made?.reservationId) await budgets?.release(tenantId, made.reservationId);
    throw error;
  }

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
  // Precedence: a failed dependency, the envelope, budgets, rate limits, the policies.
  if (budget?.kind === "failed") {
    failure = failClosed(deps, "budget", `${budget.message}; budgets fail closed`);
    reason = "FAIL_CLOSED";
    output = denied(output, [], [failure.message]);
  } else if (limits && !limits.allowed && failure?.mode === "FAIL_CLOSED") {
    reason = "FAIL_CLOSED";
    output = denied(output, [], [failure.message]);
  } else if (budget?.kind === "envelope") {
    reason = "ENVELOPE";
    output = denied(output, [], [budget.message ?? "the envelope refused the call"]);
  } else if (budget?.kind === "refused") {
    reason = "BUDGET_EXCEEDED";
    output = denied(
      output,
      [],
      budget.checks.filter((c) => c.exceeded).map((c) => c.reason),
    );
  } else if (limits && !limits.allowed) {
    reason = "RATE_LIMITED";
    output = denied(output, exceededRules(bundle, limits), []);
  }

  const decisionId = newDecisionId();
  const events: Event[] = [];
  let approvalId: string | undefined;
  if (
    output.decision === "REQUIRE_APPROVAL" &&
    reason === "POLICY" &&
    deps.approvals &&
    !req.dryRun
  ) {
    const approval = await applyApproval({
      gate: deps.approvals,
      tenantId,
      apiKeyId: req.caller.key_id,
      decisionId,
      context: req.context,
      output,
      nowMs: evaluatedAtMs,
    });
    deps.metrics.increment(APPROVALS_METRIC, { outcome: approval.kind });
    if (approval.kind === "failed") {
      failure = failClosed(deps, "approval", approval.message);
      reason = "FAIL_CLOSED";
      output = denied(output, [], [approval.message]);
    } else {
      approvalId = approval.approvalId;
      output = approval.output;
      if (approval.kind === "granted") reason = "APPROVED";
      if (approval.event) events.push(approval.event);
    }
  }

  const afterResponse: (() => Promise<void>)[] = [];
  const held = budget?.reservationId;
  if (held && output.decision !== "ALLOW" && output.decision !== "WARN") {
    // Not used: given back after the response, and not reported as held.
    afterResponse.push(() => budgets?.release(tenantId, held) ?? Promise.resolve());
    const { reservationId: _released, expiresAtMs: _expiry, ...kept } = budget as BudgetOutcome;
    budget = kept;
  }

  deps.metrics.increment("fulcrum_policy_decisions_total", { decision: output.decision, reason });
  deps.metrics.increment(
    "fulcrum_policy_evaluation_duration_seconds_sum",
    {},
    evaluation.durationMs / 1000,
  );
  deps.metrics.increment("fulcrum_policy_evaluation_duration_seconds_count");

  return {
    decisionId,
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
    ...(budget ? { budget } : {}),
    ...(approvalId ? { approvalId } : {}),
    events,
    afterResponse,
  };
}

function failClosed(
  deps: DecisionDeps,
  component: "budget" | "approval",
  message: string,
): AppliedFailure {
  deps.metrics.increment("fulcrum_policy_failure_mode_total", { component, mode: "FAIL_CLOSED" });
  return { component, mode: "FAIL_CLOSED", message };
}

/** The request fields budgets and envelopes look at. */
function budgetSubject(
  ctx: EvaluationContext | undefined,
  phase: string | undefined,
): BudgetSubject {
  return {
    ...(ctx?.workflowId ? { workflowId: ctx.workflowId } : {}),
    ...(ctx?.envelopeId ? { envelopeId: ctx.envelopeId } : {}),
    ...(phase ? { phase } : {}),
    ...(ctx?.modelId ? { modelId: ctx.modelId } : {}),
    toolNames: ctx?.toolNames ?? [],
    estimatedTokens: ctx?.estimatedTokens ?? 0,
    estimatedCostUsd: ctx?.estimatedCostUsd ?? 0,
  };
}
