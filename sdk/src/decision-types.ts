/**
 * The SDK's view of a decision (what guard/evaluate/check return) and of the budget
 * reservation it carries. The mapping from the wire is in decision.ts and budget.ts.
 */
import type { FulcrumError } from "./errors.js";
import type { SettleOptions, SettleResult, Usage } from "./usage.js";

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
 * - `"BUDGET_EXCEEDED"`: a budget (or the envelope's own limits) could not fit the call's
 *   reservation, is exhausted or suspended → DENY; see `budget.budgets` (`exceeded`);
 * - `"ENVELOPE"`: the envelope refused the call (not running, timed out, model or tool not
 *   among its allowed ones) → DENY;
 * - `"APPROVED"`: a reviewer approved exactly this call (same action, tools, arguments,
 *   input) → ALLOW, once; `approvalId` names the approval consumed;
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
  | "BUDGET_EXCEEDED"
  | "ENVELOPE"
  | "APPROVED"
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

/** The full decision of one guard/evaluate call, as data. */
export interface DecisionData {
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
  /**
   * What the decision reserved against the tenant's budgets (settle it with `settle()`),
   * or which budgets refused it. Undefined when the edge sent none (no budget applies,
   * an edge older than budgets, a synthetic decision).
   */
  budget: BudgetReservation | undefined;
  /**
   * REQUIRE_APPROVAL: the approval this call waits for (see `client.waitForApproval`);
   * APPROVED: the approval consumed. `""` otherwise.
   */
  approvalId: string;
}

/** A decision as guard/evaluate/check return it: the data plus `settle()`. */
export interface Decision extends DecisionData {
  /**
   * Records the call's actual usage against this decision's reservation
   * (CostService.RecordUsage on the management API; needs `managementUrl`). Once per
   * decision: a second call throws AlreadySettledError without calling the server.
   */
  settle(usage: Usage, options?: SettleOptions): Promise<SettleResult>;
  /** True once `settle()` was called (whatever its outcome). */
  readonly settled: boolean;
}

/** `"OK"`, `"WARNING"`, `"CRITICAL"`, `"EXCEEDED"`, `"SUSPENDED"`, or `""` when unset. */
export type BudgetStateName =
  | "OK"
  | "WARNING"
  | "CRITICAL"
  | "EXCEEDED"
  | "SUSPENDED"
  | ""
  | (string & {});

/** One budget (or an envelope's own limits) a decision reserved against. */
export interface BudgetCheck {
  /** The budget's id; `envelope:<envelope id>` for an envelope's own limits. */
  budgetId: string;
  name: string;
  /** `"tenant"`, `"workflow"` or `"envelope"`. */
  scope: string;
  status: BudgetStateName;
  /** What is left after this reservation; undefined when the budget has no such limit. */
  tokensRemaining: number | undefined;
  costRemainingUsd: number | undefined;
  llmCallsRemaining: number | undefined;
  toolCallsRemaining: number | undefined;
  /** This budget refused the reservation. */
  exceeded: boolean;
  /** When the budget's period resets; undefined for INFINITE budgets and envelopes. */
  resetAt: Date | undefined;
  /** Why it refused, for people (`""` when it did not). */
  reason: string;
}

/** What a decision set aside against the tenant's budgets until it is settled. */
export interface BudgetReservation {
  /** `""` when nothing was reserved (the call was denied, or no budget applies). */
  reservationId: string;
  /** When an unsettled reservation is released. */
  expiresAt: Date | undefined;
  reservedTokens: number;
  reservedCostUsd: number;
  budgets: BudgetCheck[];
  /** Redis could not answer: budgets were not checked and the call was denied. */
  failed: boolean;
}
