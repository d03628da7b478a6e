import type {
  ActionOutput,
  DecisionOutput,
  MatchedRuleOutput,
} from "../../../core/policy/tenant-config.js";
import type { RateLimitOutcome } from "../../../core/rate-limit/rate-limit-outcome.js";
import type { TenantBundle } from "../distribution/tenant-bundle.js";

/** The exceeded limits as matched RATE_LIMIT rules (one per limit), with retry hints. */
export function exceededRules(
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
export function denied(
  output: DecisionOutput,
  rules: (MatchedRuleOutput & { policy_id: string })[],
  extraReasons: readonly string[],
): DecisionOutput {
  const reasons = [...rules.map((r) => r.reason), ...extraReasons];
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
