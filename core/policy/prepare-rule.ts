/**
 * One configured rule (already validated: validate-tenant-config.ts) -> its
 * prepared matching parameters and static output.
 * Rules that can never match (disabled, RATE_LIMIT, empty lists) are dropped here so the Rego never iterates over them; defaults
 * (action, severity, rule id) are resolved once instead of per request.
 */
import { nonEmptyGlobs, prepareGlobs } from "./glob-patterns.js";
import { type Json, list, num, set, str, strings } from "./lenient-config.js";
import type { PreparedContentScan, PreparedRule, PreparedRuleInfo } from "./prepared-data-types.js";
import { analysePattern } from "./regex-prefilter.js";
import type { RuleAction, RuleType, Severity } from "./tenant-config.js";

const RULE_ACTIONS = new Set<string>(["DENY", "WARN", "REQUIRE_APPROVAL", "AUDIT"]);
const SEVERITIES = new Set<string>(["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"]);
/** The severity of a rule action that names none; shared with core/policy-bundle. */
export const DEFAULT_SEVERITY: Readonly<Record<RuleAction, Severity>> = {
  DENY: "HIGH",
  REQUIRE_APPROVAL: "MEDIUM",
  WARN: "LOW",
  AUDIT: "INFO",
};
const SCANNABLE = new Set(["input_text", "output_text"]);

/** A prepared rule before its rank `k` in the policy is known. */
export type RuleDraft = PreparedRule extends infer R
  ? R extends PreparedRule
    ? Omit<R, "k">
    : never
  : never;

// Missing or "" is the family default; validation rejects any other value.
function ruleAction(rule: Json): RuleAction {
  const action = rule.action;
  if (typeof action === "string" && RULE_ACTIONS.has(action)) return action as RuleAction;
  return rule.type === "APPROVAL_REQUIRED" ? "REQUIRE_APPROVAL" : "DENY";
}

/** The static output of a rule; `index` is its list position (the id of last resort). */
export function ruleInfo(rule: Json, index: number): PreparedRuleInfo {
  const action = ruleAction(rule);
  return {
    rule_id: typeof rule.id === "string" && rule.id !== "" ? rule.id : `rules[${index}]`,
    rule_name: str(rule.name),
    rule_type: rule.type as RuleType,
    priority: num(rule.priority),
    action,
    severity:
      typeof rule.severity === "string" && SEVERITIES.has(rule.severity)
        ? (rule.severity as Severity)
        : DEFAULT_SEVERITY[action],
    message: str(rule.message),
  };
}

function contentScans(rule: Json): PreparedContentScan[] {
  const patterns = strings(rule.patterns);
  const listed = strings(rule.fields);
  const fields = (listed.length > 0 ? listed : ["input_text"]).filter((f) => SCANNABLE.has(f));
  const ci = rule.case_insensitive === true;
  const scans: PreparedContentScan[] = [];
  for (const field of fields) {
    for (const pattern of patterns) {
      const regex = `${ci ? "(?i)" : ""}${pattern}`;
      scans.push({
        field: field as PreparedContentScan["field"],
        regex,
        hit: {
          condition: `${field} matches /${pattern}/${ci ? "i" : ""}`,
          reason: `${field} matches blocked pattern '${pattern}'`,
        },
        ...analysePattern(regex),
      });
    }
  }
  return scans;
}

/** The matching parameters of a rule, or null when it can never match. */
export function prepareRule(rule: Json): RuleDraft | null {
  if (rule.enabled === false) return null;
  const type = rule.type;
  const base = { action: ruleAction(rule), has_message: str(rule.message) !== "" };
  switch (type) {
    case "MODEL_RESTRICTION": {
      const denied = strings(rule.denied_models);
      const allowed = strings(rule.allowed_models);
      if (denied.length === 0 && allowed.length === 0) return null;
      return {
        ...base,
        type,
        denied: prepareGlobs(denied),
        allowed: nonEmptyGlobs(allowed),
        allowed_list: list(allowed),
        allowed_join: allowed.join(", "),
      };
    }
    case "TOOL_RESTRICTION": {
      const denied = strings(rule.denied_tools);
      const allowed = strings(rule.allowed_tools);
      if (denied.length === 0 && allowed.length === 0) return null;
      return {
        ...base,
        type,
        denied: prepareGlobs(denied),
        allowed: nonEmptyGlobs(allowed),
        allowed_list: list(allowed),
      };
    }
    case "APPROVAL_REQUIRED": {
      const tools = strings(rule.tools);
      if (tools.length === 0) return null;
      return { ...base, type, tools: prepareGlobs(tools) };
    }
    case "CONTENT_FILTER": {
      const scans = contentScans(rule);
      if (scans.length === 0) return null;
      return { ...base, type, scans };
    }
    case "COST_CONTROL": {
      const max = rule.max_cost_per_call_usd;
      if (typeof max !== "number" || !Number.isFinite(max)) return null;
      return {
        ...base,
        type,
        max,
        max_text: JSON.stringify(max),
      };
    }
    case "RBAC": {
      const allowed = strings(rule.allowed_roles);
      const denied = strings(rule.denied_roles);
      if (allowed.length === 0 && denied.length === 0) return null;
      return {
        ...base,
        type,
        allowed: allowed.length > 0 ? set(allowed) : null,
        allowed_list: list(allowed),
        denied: set(denied),
        has_denied: denied.length > 0,
        tools: nonEmptyGlobs(strings(rule.tools)),
        models: nonEmptyGlobs(strings(rule.models)),
      };
    }
    default:
      // RATE_LIMIT is enforced at the edge (validation rejects unknown types).
      return null;
  }
}
