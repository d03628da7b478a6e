import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  type Action as ActionMessage,
  ActionType,
  Decision as DecisionEnum,
  type EvaluationResult,
  type MatchedRule as MatchedRuleMessage,
  RuleType,
  Severity,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type {
  CheckPolicyResponse,
  EvaluatePoliciesResponse,
  EvaluatePolicyResponse,
} from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import type { FulcrumError } from "./errors.js";

/** The verdict the caller must apply. The strongest wins: DENY > REQUIRE_APPROVAL > WARN > ALLOW. */
export type Verdict = "ALLOW" | "DENY" | "WARN" | "REQUIRE_APPROVAL";

export interface MatchedRule {
  ruleId: string;
  ruleName: string;
  /** `"TOOL_RESTRICTION"`, `"CONTENT_FILTER"`, ... */
  ruleType: string;
  priority: number;
  matchedConditions: string[];
  /** The rule's deciding action: `"DENY"`, `"REQUIRE_APPROVAL"`, ... */
  action: string;
  reason: string;
  policyId: string;
}

export interface Action {
  /** `"DENY"`, `"WARN"`, `"MODIFY"`, `"REDIRECT"`, `"NOTIFY"`, `"TERMINATE"`, ... */
  type: string;
  parameters: Record<string, string>;
  message: string;
  /** `"INFO"` … `"CRITICAL"`, or `""` when unset. */
  severity: string;
  terminal: boolean;
}

/** The result of one policy (present when policies were named in `evaluate`). */
export interface PolicyResult {
  policyId: string;
  policyName: string;
  policyVersion: string;
  decision: Verdict;
  wouldDecide: Verdict;
  dryRun: boolean;
  matchedRules: MatchedRule[];
  actions: Action[];
  reasons: string[];
  message: string;
  metadata: Record<string, string>;
  evaluationDurationMs: number;
}

/** The full decision of one guard/evaluate call. */
export interface Decision {
  decision: Verdict;
  /** True for ALLOW and WARN: the step may proceed. */
  allowed: boolean;
  /** Server id of the recorded decision (`dec_…`); empty for a synthetic decision. */
  decisionId: string;
  reasons: string[];
  matchedRules: MatchedRule[];
  actions: Action[];
  /** One per policy when policies were named; empty for the tenant-wide (guard) evaluation. */
  results: PolicyResult[];
  /** Policy id → version that decided. */
  policyVersions: Record<string, string>;
  message: string;
  /** True when the decision came from a dry run (then `decision` is ALLOW, see `wouldDecide`). */
  dryRun: boolean;
  wouldDecide: Verdict;
  /** Server-side evaluation time. */
  evaluationDurationMs: number;
  /** When the server evaluated (ms since epoch); the client's clock for a synthetic decision. */
  evaluatedAtMs: number;
  /** Client-observed round trip, including any timeout. */
  latencyMs: number;
  /** Fulcrum could not answer and the client is FAIL_OPEN: this is a synthetic ALLOW. */
  failedOpen: boolean;
  /** Fulcrum could not answer and the client is FAIL_CLOSED: this is a synthetic DENY. */
  failedClosed: boolean;
  /** The transport failure behind a synthetic decision. */
  error?: FulcrumError;
}

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
  };
}

const VERSION_KEY = "policy_version.";

/** EvaluatePolicy: one named policy, or all active policies combined (no policy id). */
export function fromEvaluatePolicy(response: EvaluatePolicyResponse, latencyMs: number): Decision {
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
): Decision {
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
): Decision {
  return fromParts({
    decision: response.decision,
    decisionId: response.decisionId,
    reasons: response.reasons,
    matchedRules: response.matchedRules,
    actions: response.actions,
    policyVersions:
      policyId && response.policyVersion ? { [policyId]: response.policyVersion } : {},
    evaluationDurationMs: response.evaluationDurationMs,
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
  message?: string;
  dryRun?: boolean;
  evaluationDurationMs?: number;
  evaluatedAtMs?: number;
  latencyMs: number;
}

function fromParts(p: Parts): Decision {
  // A response without a decision is never read as an ALLOW (verdict() maps it to DENY).
  const decision = verdict(p.decision ?? DecisionEnum.UNSPECIFIED);
  return {
    decision,
    allowed: isAllowed(decision),
    decisionId: p.decisionId,
    reasons: [...(p.reasons ?? [])],
    matchedRules: (p.matchedRules ?? []).map(matchedRule),
    actions: (p.actions ?? []).map(action),
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
  };
}

/** The decision the failure mode stands in for when Fulcrum could not answer. */
export function syntheticDecision(
  mode: "FAIL_OPEN" | "FAIL_CLOSED",
  error: FulcrumError,
  latencyMs: number,
): Decision {
  const open = mode === "FAIL_OPEN";
  const decision: Verdict = open ? "ALLOW" : "DENY";
  const reason = `Fulcrum unavailable (${error.code}: ${error.message}); ${mode}`;
  return {
    decision,
    allowed: open,
    decisionId: "",
    reasons: [reason],
    matchedRules: [],
    actions: [],
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
  };
}
