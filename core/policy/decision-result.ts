import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Action,
  ActionSchema,
  ActionType,
  Decision,
  type EvaluationResult,
  EvaluationResultSchema,
  type MatchedRule,
  MatchedRuleSchema,
  RuleType,
  Severity,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type {
  ActionOutput,
  DecisionName,
  MatchedRuleOutput,
  PolicyResultOutput,
} from "./tenant-config.js";

/** Rego speaks enum short names; protobuf-es enums are keyed by the same names. */
function enumValue<E extends Record<string, string | number>>(
  enumObject: E,
  name: string | undefined,
): E[keyof E] {
  const value = name ? enumObject[name as keyof E] : undefined;
  return (typeof value === "number" ? value : 0) as E[keyof E];
}

export const toDecision = (name: DecisionName | string): Decision => enumValue(Decision, name);

export function toMatchedRule(rule: MatchedRuleOutput): MatchedRule {
  return create(MatchedRuleSchema, {
    ruleId: rule.rule_id,
    ruleName: rule.rule_name,
    ruleType: enumValue(RuleType, rule.rule_type),
    priority: rule.priority,
    matchedConditions: rule.matched_conditions,
    action: enumValue(ActionType, rule.action),
    reason: rule.reason,
    policyId: rule.policy_id ?? "",
  });
}

export function toAction(action: ActionOutput): Action {
  return create(ActionSchema, {
    type: enumValue(ActionType, action.type),
    message: action.message,
    severity: enumValue(Severity, action.severity),
    terminal: action.terminal,
    parameters: action.parameters ?? {},
  });
}

export interface Timing {
  evaluatedAtMs: number;
  durationMs: number;
}

export function toEvaluationResult(result: PolicyResultOutput, timing: Timing): EvaluationResult {
  return create(EvaluationResultSchema, {
    policyId: result.policy_id,
    policyVersion: result.policy_version,
    policyName: result.policy_name,
    decision: toDecision(result.decision),
    wouldDecide: toDecision(result.would_decide),
    dryRun: result.dry_run,
    matchedRules: result.matched_rules.map(toMatchedRule),
    actions: result.actions.map(toAction),
    reasons: result.matched_rules.map((rule) => rule.reason),
    message: result.message,
    evaluatedAt: timestampFromMs(timing.evaluatedAtMs),
    evaluationDurationMs: timing.durationMs,
  });
}
