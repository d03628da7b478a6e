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
import { ActionType, RuleType, Severity } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { Rule as StructuredRule } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import type { RateLimitRule, TenantConfig } from "../policy/tenant-config.js";
import { validateTenantConfig } from "../policy/validate-tenant-config.js";
import {
  assertValidRateLimitSpecs,
  InvalidRateLimitSpecError,
  type RateLimitSpec,
  type RateLimitSpecProblem,
  type RateLimitUnit,
  type RateLimitWindow,
} from "./rate-limit-spec.js";

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

/**
 * The parameters of a structured RATE_LIMIT rule's THROTTLE action (all strings, as
 * `map<string, string>` holds them): the {@link RateLimitRule} fields of the same names.
 * Counts are positive decimal integers, `tools` a comma-separated list of globs.
 */
export const STRUCTURED_RATE_LIMIT_PARAMETERS = [
  "requests_per_minute",
  "requests_per_hour",
  "tokens_per_minute",
  "per",
  "algorithm",
  "burst",
  "failure_mode",
  "tools",
] as const;

const COUNT_PARAMETERS = new Set([
  "requests_per_minute",
  "requests_per_hour",
  "tokens_per_minute",
  "burst",
]);

const DIGITS = /^[0-9]+$/;

const paramPath = (parameters: string, key: string): string =>
  /^[A-Za-z_][A-Za-z0-9_]*$/.test(key)
    ? `${parameters}.${key}`
    : `${parameters}[${JSON.stringify(key)}]`;

/**
 * `tools` split at its top-level commas: a comma inside `{...}` (alternatives) or
 * `[...]` (a character class), or escaped with `\`, belongs to its glob. Entries are
 * trimmed.
 */
export function splitGlobList(value: string): string[] {
  const out: string[] = [];
  let current = "";
  let braces = 0;
  let inClass = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (c === "\\" && i + 1 < value.length) {
      current += c + value[++i];
      continue;
    }
    if (inClass) {
      if (c === "]") inClass = false;
    } else if (c === "[") inClass = true;
    else if (c === "{") braces++;
    else if (c === "}" && braces > 0) braces--;
    else if (c === "," && braces === 0) {
      out.push(current.trim());
      current = "";
      continue;
    }
    current += c;
  }
  out.push(current.trim());
  return out;
}

export interface StructuredRateLimit {
  /** Set when there are no problems. */
  rule?: RateLimitRule;
  /** Paths below `at`, e.g. `rules[2].actions[0].parameters.requests_per_minute`. */
  problems: RateLimitSpecProblem[];
}

/**
 * The {@link RateLimitRule} a structured rule of type RULE_TYPE_RATE_LIMIT declares, and
 * every problem with it (docs/policy-authoring.md, "Rate limits"): no conditions, exactly
 * one ACTION_TYPE_THROTTLE action and no other, whose `parameters` hold the limits
 * ({@link STRUCTURED_RATE_LIMIT_PARAMETERS}; unknown ones are problems). The limits are
 * checked by validateTenantConfig, as a RATE_LIMIT rule of the governance library is.
 * `at` is the rule's path, e.g. `rules[2]`. Never throws.
 */
export function rateLimitFromStructuredRule(rule: StructuredRule, at: string): StructuredRateLimit {
  const problems: RateLimitSpecProblem[] = [];
  const add = (path: string, message: string) => problems.push({ path, message });
  if (rule.ruleType !== RuleType.RATE_LIMIT) {
    add(`${at}.rule_type`, "must be RULE_TYPE_RATE_LIMIT");
    return { problems };
  }
  if (rule.conditions.length > 0) {
    add(
      `${at}.conditions`,
      "are not supported for RATE_LIMIT rules (a limit counts every call; use per and tools to choose the counters)",
    );
  }
  const throttles: number[] = [];
  rule.actions.forEach((a, j) => {
    if (a.type === ActionType.THROTTLE) throttles.push(j);
    else {
      add(
        `${at}.actions[${j}].type`,
        `a RATE_LIMIT rule takes only its ACTION_TYPE_THROTTLE action, not ${ActionType[a.type] ? `ACTION_TYPE_${ActionType[a.type]}` : a.type} (an exceeded limit is denied with reason RATE_LIMITED)`,
      );
    }
  });
  if (throttles.length !== 1) {
    add(
      `${at}.actions`,
      `a RATE_LIMIT rule declares its limits in exactly one ACTION_TYPE_THROTTLE action, not ${throttles.length}`,
    );
  }
  if (problems.length > 0) return { problems };
  const j = throttles[0] as number;
  const action = rule.actions[j] as StructuredRule["actions"][number];
  const actionAt = `${at}.actions[${j}]`;
  if (action.message !== "") add(`${actionAt}.message`, "is not supported for RATE_LIMIT rules");
  if (action.severity !== Severity.UNSPECIFIED)
    add(`${actionAt}.severity`, "is not supported for RATE_LIMIT rules");
  if (action.terminal) add(`${actionAt}.terminal`, "is not supported for RATE_LIMIT rules");

  const parametersAt = `${actionAt}.parameters`;
  const limit: Record<string, unknown> = { type: "RATE_LIMIT" };
  const known: readonly string[] = STRUCTURED_RATE_LIMIT_PARAMETERS;
  for (const key of Object.keys(action.parameters).sort()) {
    const value = action.parameters[key] as string;
    const path = paramPath(parametersAt, key);
    if (!known.includes(key)) {
      add(path, `unknown rate limit parameter (one of ${known.join(", ")})`);
    } else if (COUNT_PARAMETERS.has(key)) {
      if (DIGITS.test(value)) limit[key] = Number(value);
      else add(path, `must be a positive integer in decimal digits, not ${JSON.stringify(value)}`);
    } else if (key === "tools") {
      limit.tools = splitGlobList(value);
    } else {
      limit[key] = value;
    }
  }
  // A value that did not parse, or an unknown parameter, is the problem to fix first.
  if (problems.length > 0) return { problems };
  // The governance library's checks of a RATE_LIMIT rule, with their paths mapped back.
  const prefix = "policies.p.rules[0]";
  for (const p of validateTenantConfig({
    policies: {
      p: { name: "", version: "", status: "ACTIVE", enforcement: "BLOCK", rules: [limit] },
    },
  })) {
    const rest = p.path.startsWith(prefix) ? p.path.slice(prefix.length) : "";
    const tool = /^\.tools\[(\d+)\]$/.exec(rest);
    if (tool) add(`${parametersAt}.tools`, `entry ${Number(tool[1]) + 1}: ${p.message}`);
    else if (rest === "") add(parametersAt, p.message);
    else add(paramPath(parametersAt, rest.replace(/^\./, "")), p.message);
  }
  if (problems.length > 0) return { problems };
  return { rule: limit as unknown as RateLimitRule, problems };
}

/**
 * The rate limits of a policy version's structured rules (proto `fulcrum.policy.v1.Rule`):
 * one spec per limit of each enabled RULE_TYPE_RATE_LIMIT rule, in rule order, with id
 * `<policy>/<rule>/<param>` where the rule is its `rule_id`, or `rules[<index>]` without
 * one. Disabled rules and rules of other types add nothing.
 *
 * @throws InvalidRateLimitSpecError when a RATE_LIMIT rule is not valid
 *   ({@link rateLimitFromStructuredRule}; the management API rejects such rules when a
 *   version is written) or two specs share an id.
 */
export function specsFromStructuredRules(
  policyId: string,
  rules: readonly StructuredRule[],
): RateLimitSpec[] {
  const specs: RateLimitSpec[] = [];
  const problems: RateLimitSpecProblem[] = [];
  rules.forEach((r, i) => {
    if (r.ruleType !== RuleType.RATE_LIMIT || r.enabled === false) return;
    const at = `rules[${i}]`;
    const parsed = rateLimitFromStructuredRule(r, at);
    problems.push(...parsed.problems);
    if (parsed.rule) specs.push(...specsFromRule(policyId, r.ruleId || at, parsed.rule));
  });
  if (problems.length > 0) throw new InvalidRateLimitSpecError(problems);
  assertValidRateLimitSpecs(specs);
  return specs;
}
