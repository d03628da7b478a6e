/**
 * Types of the Rego governance library's data and I/O (policies/fulcrum/governance).
 *
 * - {@link TenantConfig} is one tenant's policies as configured. The `data`
 *   document loaded into a wasm instance with `setData()` is
 *   `prepareTenantData(config)` (core/policy/prepare-tenant-data.ts), which
 *   validates it strictly (validateTenantConfig, validate-tenant-config.ts:
 *   any deviation from these types throws InvalidTenantConfigError, nothing is
 *   read leniently) and precompiles it for the Rego.
 * - {@link DecisionInput} is the `input` of `evaluate(input, DECISION_ENTRYPOINT)`
 *   (built by toDecisionInput, which leaves empty fields out).
 * - {@link RawDecisionOutput} is the value of the entrypoint (`evaluate()`
 *   returns `[{ result: RawDecisionOutput }]`): only what depends on the request.
 * - {@link DecisionOutput} is the full decision callers read:
 *   `expandDecision(prepared, raw)` (core/policy/expand-decision.ts).
 *
 * These types mirror the Rego exactly; policies/README.md documents the semantics.
 * Web-standard only (no Node imports): used by the edge Worker and by core.
 *
 * @example
 * const prepared = prepareTenantData(tenantConfig satisfies TenantConfig);
 * const policy = await loadPolicy(wasmModule);
 * policy.setData(prepared);
 * const [{ result }] = policy.evaluate(input satisfies DecisionInput, DECISION_ENTRYPOINT) as [{ result: RawDecisionOutput }];
 * const output: DecisionOutput = expandDecision(prepared, result);
 */

export const DECISION_ENTRYPOINT = "fulcrum/governance/decision" as const;

export type PolicyStatus = "DRAFT" | "ACTIVE" | "INACTIVE" | "ARCHIVED";

/** Required; any other value is a configuration error. */
export type Enforcement = "AUDIT" | "WARN" | "BLOCK" | "TERMINATE";

export type Phase =
  | "PRE_EXECUTION"
  | "PRE_LLM_CALL"
  | "POST_LLM_CALL"
  | "PRE_TOOL_CALL"
  | "POST_TOOL_CALL"
  | "POST_EXECUTION";

/** Actions a rule may ask for; any other value is a configuration error. */
export type RuleAction = "DENY" | "WARN" | "REQUIRE_APPROVAL" | "AUDIT";

export type Severity = "INFO" | "LOW" | "MEDIUM" | "HIGH" | "CRITICAL";

export type DecisionName = "ALLOW" | "WARN" | "REQUIRE_APPROVAL" | "DENY";

/** Types of {@link ActionOutput}: a rule action after enforcement/dry run, or TERMINATE. */
export type ActionType = RuleAction | "TERMINATE";

export type RuleType =
  | "MODEL_RESTRICTION"
  | "TOOL_RESTRICTION"
  | "APPROVAL_REQUIRED"
  | "CONTENT_FILTER"
  | "COST_CONTROL"
  | "RBAC"
  | "RATE_LIMIT";

/** Policy scope. Each empty or missing list means "no restriction". */
export interface PolicyScope {
  /** Exact workflow ids. */
  workflow_ids?: string[];
  /** A context with phase "" is outside any phase-scoped policy. */
  phases?: Phase[];
  /** The user must hold at least one. */
  roles?: string[];
  /** Globs against context.model_id. */
  model_ids?: string[];
  /** Globs; at least one of context.tool_names must match. */
  tool_names?: string[];
}

interface RuleBase<T extends string> {
  /** Echoed in results; a rule without an id is named `rules[<index>]`. */
  id?: string;
  name?: string;
  type: T;
  /** Defaults to true; `false` never matches. */
  enabled?: boolean;
  /** Higher first in matched_rules (then list order). Default 0. */
  priority?: number;
  /** Empty/missing = every phase; otherwise the context phase must be listed. */
  phases?: Phase[];
  /** Missing or "": DENY (APPROVAL_REQUIRED: REQUIRE_APPROVAL). */
  action?: RuleAction | "";
  /** Replaces the generated reason. */
  message?: string;
  /** Overrides the action's default severity (DENY HIGH, REQUIRE_APPROVAL MEDIUM, WARN LOW, AUDIT INFO). */
  severity?: Severity;
}

/** Globs use glob.match with no delimiters: `*` matches any characters. Calls without a model are not checked. */
export interface ModelRestrictionRule extends RuleBase<"MODEL_RESTRICTION"> {
  allowed_models?: string[];
  denied_models?: string[];
}

export interface ToolRestrictionRule extends RuleBase<"TOOL_RESTRICTION"> {
  allowed_tools?: string[];
  denied_tools?: string[];
}

export interface ApprovalRequiredRule extends RuleBase<"APPROVAL_REQUIRED"> {
  /** Globs; an empty list matches nothing. */
  tools?: string[];
}

export interface ContentFilterRule extends RuleBase<"CONTENT_FILTER"> {
  /** RE2 regular expressions; one RE2 cannot compile is a configuration error. */
  patterns?: string[];
  case_insensitive?: boolean;
  /** Default ["input_text"]. */
  fields?: ("input_text" | "output_text")[];
}

export interface CostControlRule extends RuleBase<"COST_CONTROL"> {
  /** Required: a finite number >= 0. */
  max_cost_per_call_usd: number;
}

export interface RbacRule extends RuleBase<"RBAC"> {
  allowed_roles?: string[];
  denied_roles?: string[];
  /** Optional globs: the rule governs only calls using a matching tool (and model, if both are set). */
  tools?: string[];
  models?: string[];
}

/**
 * Enforced at the edge (Redis, core/rate-limit/), ignored by the Rego library. Each
 * limit set becomes one edge rate limit (core/rate-limit/rate-limit-rules.ts); at
 * least one is required. Limits are integers >= 1.
 */
export interface RateLimitRule extends RuleBase<"RATE_LIMIT"> {
  requests_per_minute?: number;
  requests_per_hour?: number;
  tokens_per_minute?: number;
  /** Whose counter: default "tenant" (one counter for the whole tenant). */
  per?: "tenant" | "api_key" | "workflow" | "tool";
  /** Default "sliding_window". */
  algorithm?: "sliding_window" | "token_bucket";
  /** token_bucket with a single limit only: the bucket's capacity; default the limit. */
  burst?: number;
  /** When Redis is unreachable; default FAIL_CLOSED. */
  failure_mode?: "FAIL_CLOSED" | "FAIL_OPEN";
  /** per "tool" only: globs naming the tools limited (non-empty); default every tool. */
  tools?: string[];
}

export type Rule =
  | ModelRestrictionRule
  | ToolRestrictionRule
  | ApprovalRequiredRule
  | ContentFilterRule
  | CostControlRule
  | RbacRule
  | RateLimitRule;

export interface PolicyConfig {
  name: string;
  /** Opaque, echoed back as policy_version. */
  version: string;
  status: PolicyStatus;
  enforcement: Enforcement;
  dry_run?: boolean;
  /** Order of evaluation when all active policies are evaluated: higher first, then id. Default 0. */
  priority?: number;
  scope?: PolicyScope;
  /** A rule of an unknown type is a configuration error (fail closed). */
  rules: Rule[];
}

/** One tenant's configuration; its prepared form is the `data` document of the tenant's wasm instance. */
export interface TenantConfig {
  /** When set (non-empty), a context naming another tenant gets DENY (fail closed). */
  tenant_id?: string;
  policies: Record<string, PolicyConfig>;
}

/** `input.context` (named apart from the protobuf EvaluationContext it is built from). */
export interface PolicyContext {
  tenant_id?: string;
  workflow_id?: string;
  envelope_id?: string;
  user_id?: string;
  user_roles?: string[];
  /** "" or missing = unspecified. */
  phase?: Phase | "" | (string & {});
  model_id?: string;
  tool_names?: string[];
  input_text?: string;
  output_text?: string;
  /** Accepted but not read by any rule family yet. */
  attributes?: Record<string, unknown>;
  /** Missing = 0 (checked); present but not a number (a non-finite value travels as null) = not checked. */
  estimated_cost_usd?: number;
  action?: string;
}

export interface DecisionInput {
  /** Empty/missing = every ACTIVE policy. Named ids are evaluated whatever their status; unknown ids are skipped. */
  policy_ids?: string[];
  /** Treat every policy as dry run. */
  dry_run?: boolean;
  context?: PolicyContext;
}

/**
 * A matched rule as the Rego reports it: `[k, matched_conditions]`, plus the
 * generated reason unless the rule has its own message. `k` indexes the
 * policy's prepared `rule_info`.
 */
export type RawMatchedRule = [k: number, conditions: string[], reason?: string];

/** A policy's entry in {@link RawDecisionOutput.results}. */
export interface RawPolicyResult {
  id: string;
  /** Out of scope (ALLOW, no rules evaluated): the missed scope dimensions, in order. */
  misses?: string[];
  /** Missing when nothing matched (ALLOW). */
  matched?: RawMatchedRule[];
  /** Missing = ALLOW. */
  decision?: DecisionName;
  /** Missing = same as decision. */
  would_decide?: DecisionName;
}

/** The value of the `decision` entrypoint: the minimal wasm output. */
export interface RawDecisionOutput {
  /** In evaluation order; absent on a tenant mismatch. */
  results?: RawPolicyResult[];
  /** Present (true) only for a request-level dry run. */
  dry_run?: true;
  /** Present only when the context names another tenant than the loaded one: DENY. */
  tenant?: string;
}

export interface MatchedRuleOutput {
  rule_id: string;
  rule_name: string;
  rule_type: RuleType;
  priority: number;
  /** The rule's own action, before enforcement and dry run. */
  action: RuleAction;
  reason: string;
  matched_conditions: string[];
  /** Present in the flattened Decision.matched_rules only. */
  policy_id?: string;
}

export interface ActionOutput {
  type: ActionType;
  message: string;
  /** The rule's severity (INFO once the action is AUDIT); CRITICAL for TERMINATE. */
  severity: Severity;
  /** true for DENY and TERMINATE. */
  terminal: boolean;
  /** Reserved: the Rego library emits no action parameters today. */
  parameters?: Record<string, string>;
}

export interface PolicyResultOutput {
  policy_id: string;
  /** Echo of the policy's `version`. */
  policy_version: string;
  policy_name: string;
  /** ALLOW when dry_run (and when the scope excludes the context: no rule is evaluated then). */
  decision: DecisionName;
  dry_run: boolean;
  /** The verdict after enforcement, before dry run. */
  would_decide: DecisionName;
  matched_rules: MatchedRuleOutput[];
  actions: ActionOutput[];
  /** "no rule matched", "not applicable: the context is outside the policy scope (...)", or the verdict and reasons. */
  message: string;
}

/** The full decision: expandDecision(prepared, RawDecisionOutput). */
export interface DecisionOutput {
  /** Strongest decision over results (dry-run results are ALLOW). */
  decision: DecisionName;
  /** Strongest would_decide over results: the decision had nothing been a dry run. */
  would_decide: DecisionName;
  /** In input order, or by priority desc then id when all active policies were evaluated. */
  results: PolicyResultOutput[];
  matched_rules: (MatchedRuleOutput & { policy_id: string })[];
  /** One per matched rule: "<reason> (rule <id> of policy <id>)", prefixed "dry run: " for dry-run policies. */
  reasons: string[];
  /** Every result's actions, in order. */
  actions: ActionOutput[];
}

/** Orders decisions as the Rego does: DENY > REQUIRE_APPROVAL > WARN > ALLOW. */
export const DECISION_RANK: Readonly<Record<DecisionName, number>> = {
  ALLOW: 0,
  WARN: 1,
  REQUIRE_APPROVAL: 2,
  DENY: 3,
};
