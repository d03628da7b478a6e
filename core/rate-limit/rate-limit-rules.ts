/**
 * The rate limits a tenant configures, as RATE_LIMIT rules of its policies
 * (core/policy/tenant-config.ts, validated strictly by validate-tenant-config.ts),
 * turned into the {@link RateLimitSpec}s the edge enforces. One rule may set several
 * limits (`requests_per_minute: 60, tokens_per_minute: 10000`): each is its own spec
 * and counter, with id `<policy>/<rule>/<param>`, so renaming nothing keeps counters.
 *
 * Only ACTIVE policies and enabled rules count. The policy's scope, enforcement and
 * dry run, and the rule's action, are not applied here: how an exceeded limit joins
 * the policy verdict is the edge wiring's choice (issue 4: DENY, reason RATE_LIMITED).
 */
import type { RateLimitRule, TenantConfig } from "../policy/tenant-config.js";
import type { RateLimitSpec, RateLimitUnit, RateLimitWindow } from "./rate-limit-spec.js";

const LIMITS: Record<
  "requests_per_minute" | "requests_per_hour" | "tokens_per_minute",
  { unit: RateLimitUnit; window: RateLimitWindow }
> = {
  requests_per_minute: { unit: "requests", window: "1m" },
  requests_per_hour: { unit: "requests", window: "1h" },
  tokens_per_minute: { unit: "tokens", window: "1m" },
};

/** The specs of one RATE_LIMIT rule (assumed valid). */
export function specsFromRule(
  policyId: string,
  ruleId: string,
  rule: RateLimitRule,
): RateLimitSpec[] {
  const specs: RateLimitSpec[] = [];
  for (const [param, { unit, window }] of Object.entries(LIMITS)) {
    const rate = rule[param as keyof typeof LIMITS];
    if (rate === undefined) continue;
    const tokenBucket = rule.algorithm === "token_bucket";
    specs.push({
      id: `${policyId}/${ruleId}/${param}`,
      scope: rule.per ?? "tenant",
      unit,
      // A bucket holds `burst` and refills `rate` per window; a window counts `rate`.
      limit: tokenBucket ? (rule.burst ?? rate) : rate,
      window,
      algorithm: rule.algorithm ?? "sliding_window",
      ...(tokenBucket ? { refill: rate } : {}),
      failure_mode: rule.failure_mode ?? "FAIL_CLOSED",
      ...(rule.tools ? { tools: [...rule.tools] } : {}),
      ...(rule.phases && rule.phases.length > 0 ? { phases: [...rule.phases] } : {}),
    });
  }
  return specs;
}

/**
 * Every rate limit of `config` (assumed valid: validateTenantConfig), policies in id
 * order, rules in list order. A rule without an id is named `rules[<index>]`, as in
 * decisions.
 */
export function specsFromTenantConfig(config: TenantConfig): RateLimitSpec[] {
  const specs: RateLimitSpec[] = [];
  for (const policyId of Object.keys(config.policies).sort()) {
    const policy = config.policies[policyId];
    if (policy?.status !== "ACTIVE") continue;
    policy.rules.forEach((rule, i) => {
      if (rule.type !== "RATE_LIMIT" || rule.enabled === false) return;
      specs.push(...specsFromRule(policyId, rule.id ?? `rules[${i}]`, rule as RateLimitRule));
    });
  }
  return specs;
}
