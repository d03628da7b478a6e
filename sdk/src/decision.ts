import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  type Action as ActionMessage,
  ActionType,
  type AppliedFailureMode as AppliedFailureModeMessage,
  type BudgetReservation as BudgetReservationMessage,
  Decision as DecisionEnum,
  DecisionReason as DecisionReasonEnum,
  type EvaluationResult,
  FailureMode as FailureModeEnum,
  type MatchedRule as MatchedRuleMessage,
  type RateLimitState,
  RuleType,
  Severity,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type {
  CheckPolicyResponse,
  EvaluatePoliciesResponse,
  EvaluatePolicyResponse,
} from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { budgetReservation } from "./budget.js";
import type {
  Action,
  AppliedFailureMode,
  DecisionData,
  DecisionReason,
  MatchedRule,
  PolicyResult,
  RateLimit,
  Verdict,
} from "./decision-types.js";
import type { FulcrumError } from "./errors.js";

export type * from "./decision-types.js";

export function verdict(value: DecisionEnum): Verdict {
  switch (value) {
    case DecisionEnum.ALLOW:
      return "ALLOW";
    case DecisionEnum.WARN:
      return "WARN";
    case DecisionEnum.REQUIRE_APPROVAL:
      return "REQUIRE_APPROVAL";
    default:
      // DENY, and anything this SDK version does not know: never read as an ALLOW.
      return "DENY";
  }
}

export function isAllowed(value: Verdict): boolean {
  return value === "ALLOW" || value === "WARN";
}

function enumName(names: Record<number, string>, value: number): string {
  return value === 0 ? "" : (names[value] ?? String(value));
}

function matchedRule(m: MatchedRuleMessage): MatchedRule {
  return {
    ruleId: m.ruleId,
    ruleName: m.ruleName,
    ruleType: enumName(RuleType, m.ruleType),
    priority: m.priority,
    matchedConditions: [...m.matchedConditions],
    action: enumName(ActionType, m.action),
    reason: m.reason,
    policyId: m.policyId,
  };
}

function action(a: ActionMessage): Action {
  return {
    type: enumName(ActionType, a.type),
    parameters: { ...a.parameters },
    message: a.message,
    severity: enumName(Severity, a.severity),
    terminal: a.terminal,
  };
}

function millis(ts: Timestamp | undefined): number {
  return ts ? timestampMs(ts) : Date.now();
}

function policyResult(r: EvaluationResult): PolicyResult {
  return {
    policyId: r.policyId,
    policyName: r.policyName,
    policyVersion: r.policyVersion,
    decision: verdict(r.decision),
    wouldDecide: verdict(r.wouldDecide || r.decision),
    dryRun: r.dryRun,
    matchedRules: r.matchedRules.map(matchedRule),
    actions: r.actions.map(action),
    reasons: [...r.reasons],
    message: r.message,
    metadata: { ...r.metadata },
    evaluationDurationMs: r.evaluationDurationMs,
    reason: reasonName(r.reason),
    rateLimits: r.rateLimits.map(rateLimit),
    failureMode: appliedFailureMode(r.failureMode),
  };
}

function reasonName(value: DecisionReasonEnum): DecisionReason {
  return enumName(DecisionReasonEnum, value);
}

function rateLimit(r: RateLimitState): RateLimit {
  return {
    limitId: r.limitId,
    scope: r.scope,
    subject: r.subject,
    unit: r.unit,
    limit: r.limit,
    remaining: r.remaining,
    resetAt: r.resetAt ? new Date(timestampMs(r.resetAt)) : undefined,
    retryAfterMs: r.retryAfterMs,
    exceeded: r.exceeded,
    failed: r.failed,
  };
}

function appliedFailureMode(
  m: AppliedFailureModeMessage | undefined,
): AppliedFailureMode | undefined {
  if (!m) return undefined;
  return {
    component: m.component,
    // An unset or unknown mode is reported as the safe one.
    mode: m.mode === FailureModeEnum.FAIL_OPEN ? "FAIL_OPEN" : "FAIL_CLOSED",
    message: m.message,
  };
}

/** Largest wait over the exceeded limits; undefined when none was exceeded. */
function retryAfter(limits: readonly RateLimit[], now: number): number | undefined {
  const exceeded = limits.filter((l) => l.exceeded);
  if (exceeded.length === 0) return undefined;
  return Math.max(
    ...exceeded.map((l) =>
      l.retryAfterMs > 0 ? l.retryAfterMs : Math.max(0, (l.resetAt?.getTime() ?? now) - now),
    ),
  );
}

const VERSION_KEY = "policy_version.";

/** EvaluatePolicy: one named policy, or all active policies combined (no policy id). */
export function fromEvaluatePolicy(
  response: EvaluatePolicyResponse,
  latencyMs: number,
): DecisionData {
  const r = response.result;
  if (!r) return fromParts({ decisionId: response.decisionId, latencyMs });
  const policyVersions: Record<string, string> = {};
  if (r.policyId) policyVersions[r.policyId] = r.policyVersion;
  for (const [key, value] of Object.entries(r.metadata)) {
    if (key.startsWith(VERSION_KEY)) policyVersions[key.slice(VERSION_KEY.length)] = value;
  }
  return fromParts({
    decision: r.decision,
    wouldDecide: r.wouldDecide,
    decisionId: response.decisionId,
    reasons: r.reasons,
    matchedRules: r.matchedRules,
    actions: r.actions,
    results: r.policyId ? [r] : [],
    policyVersions,
    reason: r.reason,
    rateLimits: r.rateLimits,
    failureMode: r.failureMode,
    budget: r.budget,
    approvalId: r.approvalId,
    message: r.message,
    dryRun: r.dryRun,
    evaluationDurationMs: r.evaluationDurationMs,
    evaluatedAtMs: millis(r.evaluatedAt),
    latencyMs,
  });
}

/** EvaluatePolicies: one result per named policy plus the final decision. */
export function fromEvaluatePolicies(
  response: EvaluatePoliciesResponse,
  latencyMs: number,
): DecisionData {
  const results = response.results;
  return fromParts({
    decision: response.finalDecision,
    wouldDecide: strongest(results.map((r) => r.wouldDecide || r.decision)),
    decisionId: response.decisionId,
    reasons: response.reasons,
    matchedRules: results.flatMap((r) => r.matchedRules),
    actions: response.actions,
    results,
    policyVersions: Object.fromEntries(results.map((r) => [r.policyId, r.policyVersion])),
    reason: response.reason,
    rateLimits: response.rateLimits,
    failureMode: response.failureMode,
    budget: response.budget,
    approvalId: response.approvalId,
    message: `${results.length} policies evaluated`,
    dryRun: results.some((r) => r.dryRun),
    evaluationDurationMs: response.evaluationDurationMs,
    evaluatedAtMs: millis(response.evaluatedAt),
    latencyMs,
  });
}

/** CheckPolicy (the runbook's call shape). */
export function fromCheckPolicy(
  response: CheckPolicyResponse,
  policyId: string,
  latencyMs: number,
): DecisionData {
  return fromParts({
    decision: response.decision,
    decisionId: response.decisionId,
    reasons: response.reasons,
    matchedRules: response.matchedRules,
    actions: response.actions,
    policyVersions: {
      ...(policyId && response.policyVersion ? { [policyId]: response.policyVersion } : {}),
      ...response.policyVersions,
    },
    reason: response.reason,
    rateLimits: response.rateLimits,
    failureMode: response.failureMode,
    budget: response.budget,
    approvalId: response.approvalId,
    evaluationDurationMs: response.evaluationDurationMs,
    evaluatedAtMs: millis(response.evaluatedAt),
    latencyMs,
  });
}

const ORDER: Record<Verdict, number> = { ALLOW: 0, WARN: 1, REQUIRE_APPROVAL: 2, DENY: 3 };

function strongest(values: DecisionEnum[]): DecisionEnum {
  if (values.length === 0) return DecisionEnum.ALLOW;
  return values.reduce((a, b) => (ORDER[verdict(b)] > ORDER[verdict(a)] ? b : a));
}

interface Parts {
  decision?: DecisionEnum;
  wouldDecide?: DecisionEnum;
  decisionId: string;
  reasons?: readonly string[];
  matchedRules?: readonly MatchedRuleMessage[];
  actions?: readonly ActionMessage[];
  results?: readonly EvaluationResult[];
  policyVersions?: Record<string, string>;
  reason?: DecisionReasonEnum;
  rateLimits?: readonly RateLimitState[];
  failureMode?: AppliedFailureModeMessage | undefined;
  budget?: BudgetReservationMessage | undefined;
  approvalId?: string;
  message?: string;
  dryRun?: boolean;
  evaluationDurationMs?: number;
  evaluatedAtMs?: number;
  latencyMs: number;
}

function fromParts(p: Parts): DecisionData {
  // A response without a decision is never read as an ALLOW (verdict() maps it to DENY).
  const decision = verdict(p.decision ?? DecisionEnum.UNSPECIFIED);
  const rateLimits = (p.rateLimits ?? []).map(rateLimit);
  return {
    decision,
    allowed: isAllowed(decision),
    decisionId: p.decisionId,
    reason: reasonName(p.reason ?? DecisionReasonEnum.UNSPECIFIED),
    reasons: [...(p.reasons ?? [])],
    matchedRules: (p.matchedRules ?? []).map(matchedRule),
    actions: (p.actions ?? []).map(action),
    rateLimits,
    retryAfterMs: retryAfter(rateLimits, Date.now()),
    failureMode: appliedFailureMode(p.failureMode),
    results: (p.results ?? []).map(policyResult),
    policyVersions: p.policyVersions ?? {},
    message: p.message ?? "",
    dryRun: p.dryRun ?? false,
    wouldDecide: p.wouldDecide ? verdict(p.wouldDecide) : decision,
    evaluationDurationMs: p.evaluationDurationMs ?? 0,
    evaluatedAtMs: p.evaluatedAtMs ?? Date.now(),
    latencyMs: p.latencyMs,
    failedOpen: false,
    failedClosed: false,
    budget: budgetReservation(p.budget),
    approvalId: p.approvalId ?? "",
  };
}

/**
 * The decision the failure mode stands in for when Fulcrum could not answer:
 * reason `"FAIL_OPEN"` (ALLOW) or `"FAIL_CLOSED"` (DENY), failureMode component `"edge"`.
 */
export function syntheticDecision(
  mode: "FAIL_OPEN" | "FAIL_CLOSED",
  error: FulcrumError,
  latencyMs: number,
): DecisionData {
  const open = mode === "FAIL_OPEN";
  const decision: Verdict = open ? "ALLOW" : "DENY";
  const reason = `Fulcrum unavailable (${error.code}: ${error.message}); ${mode}`;
  return {
    decision,
    allowed: open,
    decisionId: "",
    reason: mode,
    reasons: [reason],
    matchedRules: [],
    actions: [],
    rateLimits: [],
    retryAfterMs: undefined,
    failureMode: { component: "edge", mode, message: `${error.code}: ${error.message}` },
    results: [],
    policyVersions: {},
    message: reason,
    dryRun: false,
    wouldDecide: decision,
    evaluationDurationMs: 0,
    evaluatedAtMs: Date.now(),
    latencyMs,
    failedOpen: open,
    failedClosed: !open,
    error,
    budget: undefined,
    approvalId: "",
  };
}
