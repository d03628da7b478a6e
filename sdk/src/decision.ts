import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  type Action as ActionMessage,
  ActionType,
  type AppliedFailureMode as AppliedFailureModeMessage,
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

/**
 * Why a decision is what it is, for code (`reasons` are for people):
 * - `"POLICY"`: the tenant's active policies decided (whatever the verdict);
 * - `"RATE_LIMITED"`: a rate limit was exceeded → DENY; see `rateLimits` and `retryAfterMs`;
 * - `"NO_ACTIVE_POLICIES"`: the tenant has no active policy, nothing restricts the call → ALLOW;
 * - `"FAIL_CLOSED"`: a dependency failed under FAIL_CLOSED → DENY. Server side (e.g. Redis
 *   behind a rate limit; `failedClosed` false, `failureMode.component` names it) or client
 *   side (Fulcrum could not be reached; `failedClosed` true, `failureMode.component` `"edge"`);
 * - `"FAIL_OPEN"`: SDK only — Fulcrum could not be reached and the client is FAIL_OPEN
 *   (`failedOpen` true). The server never sends it: a dependency it absorbs under
 *   FAIL_OPEN leaves the reason as is and sets `failureMode`;
 * - `""`: the edge did not say (an edge older than this field);
 * - any other string: a reason newer than this SDK (its number, e.g. `"5"`).
 */
export type DecisionReason =
  | "POLICY"
  | "RATE_LIMITED"
  | "NO_ACTIVE_POLICIES"
  | "FAIL_CLOSED"
  | "FAIL_OPEN"
  | ""
  | (string & {});

/** One rate-limit counter the decision was counted against, after the decision. */
export interface RateLimit {
  /** `<policy id>/<rule id>/<limit>`, e.g. `"limits/per-workflow/requests_per_minute"`. */
  limitId: string;
  /** Whose counter: `"tenant"`, `"api_key"`, `"workflow"` or `"tool"`. */
  scope: string;
  /** The key id, workflow id or tool name (`""` for scope `"tenant"`). */
  subject: string;
  /** `"requests"` or `"tokens"`. */
  unit: string;
  limit: number;
  /** Units left after this decision (0 when exceeded). */
  remaining: number;
  /** When the window resets; undefined when unknown. */
  resetAt: Date | undefined;
  /** When exceeded: wait at least this long before retrying (0 otherwise). */
  retryAfterMs: number;
  /** This call would go over the limit; it was not counted. */
  exceeded: boolean;
  /** The counter could not be read (Redis failed); the limit's failure mode applied. */
  failed: boolean;
}

/** A dependency failure the decision absorbed, and the failure mode that decided. */
export interface AppliedFailureMode {
  /** What failed: `"rate_limit"` (server side), `"edge"` (Fulcrum unreachable, synthetic decision). */
  component: string;
  mode: "FAIL_OPEN" | "FAIL_CLOSED";
  /** What happened, for people. */
  message: string;
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
  reason: DecisionReason;
  rateLimits: RateLimit[];
  failureMode: AppliedFailureMode | undefined;
}

/** The full decision of one guard/evaluate call. */
export interface Decision {
  decision: Verdict;
  /** True for ALLOW and WARN: the step may proceed. */
  allowed: boolean;
  /** Server id of the recorded decision (`dec_…`); empty for a synthetic decision. */
  decisionId: string;
  /** Why, for code: `"POLICY"`, `"RATE_LIMITED"`, ... (see DecisionReason). */
  reason: DecisionReason;
  /** Why, for people: one line per deciding rule (or the failure). */
  reasons: string[];
  matchedRules: MatchedRule[];
  actions: Action[];
  /** Every rate-limit counter this call was counted against (empty when none applies). */
  rateLimits: RateLimit[];
  /**
   * How long to wait before retrying, when a rate limit was exceeded: the largest
   * `retryAfterMs` of the exceeded limits (for one without it, the time until its
   * `resetAt`). Undefined when no limit was exceeded.
   */
  retryAfterMs: number | undefined;
  /** Set when a dependency failed and a failure mode decided (server side or, for a synthetic decision, client side). */
  failureMode: AppliedFailureMode | undefined;
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
    reason: r.reason,
    rateLimits: r.rateLimits,
    failureMode: r.failureMode,
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
    reason: response.reason,
    rateLimits: response.rateLimits,
    failureMode: response.failureMode,
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
    policyVersions: {
      ...(policyId && response.policyVersion ? { [policyId]: response.policyVersion } : {}),
      ...response.policyVersions,
    },
    reason: response.reason,
    rateLimits: response.rateLimits,
    failureMode: response.failureMode,
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
  message?: string;
  dryRun?: boolean;
  evaluationDurationMs?: number;
  evaluatedAtMs?: number;
  latencyMs: number;
}

function fromParts(p: Parts): Decision {
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
): Decision {
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
  };
}
