/**
 * From a compiled policy's answer ({@link VerdictSets}) and its published
 * metadata to the proto EvaluationResult, with the governance library's
 * semantics (policies/fulcrum/governance/enforcement.rego, rendered as
 * core/policy/expand-decision.ts renders it), so a tenant policy and a
 * library policy with the same matches, enforcement and dry run answer alike:
 *
 * - verdict: any deny → DENY, else require_approval → REQUIRE_APPROVAL, else
 *   warn → WARN, else ALLOW; `audit` items are reported and leave ALLOW;
 * - enforcement caps it: AUDIT → ALLOW (actions become AUDIT), WARN → at most
 *   WARN, BLOCK unchanged, TERMINATE unchanged plus a terminal TERMINATE action
 *   (severity CRITICAL) when the verdict is DENY;
 * - dry run (the policy's, or the request's): decision ALLOW, would_decide the
 *   capped verdict, every action AUDIT/INFO "dry run: would <TYPE>: <reason>".
 *
 * Fail closed: an answer that is not VerdictSets-shaped throws (the caller
 * reports Internal), it is never read as ALLOW.
 */

import type { EvaluationResult } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { strongestDecision } from "../policy/decision-order.js";
import { type Timing, toEvaluationResult } from "../policy/decision-result.js";
import { DEFAULT_SEVERITY } from "../policy/prepare-rule.js";
import type {
  ActionOutput,
  ActionType,
  DecisionName,
  Enforcement,
  MatchedRuleOutput,
  PolicyResultOutput,
  RuleAction,
  RuleType,
  Severity,
} from "../policy/tenant-config.js";
import type { PublishedPolicy, VerdictItem, VerdictSets } from "./published-policy.js";

/** The sets in the order their items are listed among equal priorities. */
const SETS: readonly [keyof VerdictSets, RuleAction][] = [
  ["deny", "DENY"],
  ["require_approval", "REQUIRE_APPROVAL"],
  ["warn", "WARN"],
  ["audit", "AUDIT"],
];

/** The governance library's default severities (core/policy/prepare-rule.ts). */
export const TERMINATE_MESSAGE = "policy enforcement is TERMINATE: the execution must stop";

const verdictOf = (action: RuleAction): DecisionName => (action === "AUDIT" ? "ALLOW" : action);

/** enforcement.rego `capped`. */
function capped(verdict: DecisionName, level: Enforcement): DecisionName {
  if (level === "AUDIT") return "ALLOW";
  if (level === "WARN" && (verdict === "DENY" || verdict === "REQUIRE_APPROVAL")) return "WARN";
  return verdict;
}

/** A rule action once enforcement (and dry run) apply (expand-decision.ts `effectiveAction`). */
function effectiveAction(action: RuleAction, level: Enforcement, dryRun: boolean): ActionType {
  if (dryRun || action === "AUDIT" || level === "AUDIT") return "AUDIT";
  if (level === "WARN" && (action === "DENY" || action === "REQUIRE_APPROVAL")) return "WARN";
  return action;
}

const action = (type: ActionType, message: string, severity: Severity): ActionOutput => ({
  type,
  message,
  severity,
  terminal: type === "DENY" || type === "TERMINATE",
});

function checkItem(item: unknown, where: string): VerdictItem {
  if (
    typeof item !== "object" ||
    item === null ||
    typeof (item as VerdictItem).message !== "string"
  ) {
    throw new TypeError(`${where}: not a verdict item`);
  }
  return item as VerdictItem;
}

interface Match {
  item: VerdictItem;
  action: RuleAction;
}

/** Every item of every set, by priority (desc), then set order, then the wrapper's order. */
export function matchesOf(sets: VerdictSets): Match[] {
  if (typeof sets !== "object" || sets === null) throw new TypeError("no verdict sets");
  const out: Match[] = [];
  for (const [name, act] of SETS) {
    const list: unknown = sets[name] ?? [];
    if (!Array.isArray(list)) throw new TypeError(`${name}: not a list`);
    list.forEach((item, i) => {
      out.push({ item: checkItem(item, `${name}[${i}]`), action: act });
    });
  }
  const priority = (m: Match) => (typeof m.item.priority === "number" ? m.item.priority : 0);
  return out.sort((a, b) => priority(b) - priority(a)); // stable
}

/** The policy's result in the governance library's output form (before protobuf). */
export function verdictResult(
  sets: VerdictSets,
  meta: PublishedPolicy,
  requestDryRun = false,
): PolicyResultOutput {
  const dryRun = requestDryRun || meta.dry_run;
  const base = {
    policy_id: meta.policy_id,
    policy_version: String(meta.version),
    policy_name: meta.name ?? "",
    dry_run: dryRun,
  };
  const matches = matchesOf(sets);
  if (matches.length === 0) {
    return {
      ...base,
      decision: "ALLOW",
      would_decide: "ALLOW",
      matched_rules: [],
      actions: [],
      message: "no rule matched",
    };
  }
  const level = meta.enforcement;
  const matched = matches.map(
    ({ item, action: act }): MatchedRuleOutput => ({
      rule_id: item.rule_id ?? "",
      rule_name: item.rule_name ?? "",
      // Any proto RuleType short name; toMatchedRule maps it (CUSTOM by default).
      rule_type: (item.rule_type ?? "CUSTOM") as RuleType,
      priority: Math.trunc(item.priority ?? 0),
      action: act,
      reason: item.message,
      matched_conditions: [],
    }),
  );
  const actions = matches.map(({ item, action: act }) => {
    const type = effectiveAction(act, level, dryRun);
    const text = dryRun
      ? `dry run: would ${effectiveAction(act, level, false)}: ${item.message}`
      : item.message;
    return action(type, text, type === "AUDIT" ? "INFO" : (item.severity ?? DEFAULT_SEVERITY[act]));
  });
  const raw = strongestDecision(matches.map((m) => verdictOf(m.action)));
  const verdict = capped(raw, level);
  if (level === "TERMINATE" && verdict === "DENY" && !dryRun) {
    actions.push(action("TERMINATE", TERMINATE_MESSAGE, "CRITICAL"));
  }
  const summary = matched.map((m) => m.reason).join("; ");
  const message = dryRun
    ? `dry run: would ${verdict}: ${summary}`
    : level === "AUDIT" && raw !== "ALLOW"
      ? `audit only, rules would ${raw}: ${summary}`
      : verdict !== raw
        ? `${verdict} (capped from ${raw} by WARN enforcement): ${summary}`
        : `${verdict}: ${summary}`;
  return {
    ...base,
    decision: dryRun ? "ALLOW" : verdict,
    would_decide: verdict,
    matched_rules: matched,
    actions,
    message,
  };
}

/** A not-applicable result (out of scope or outside the effective window): ALLOW, nothing matched. */
export function notApplicableResult(
  meta: PublishedPolicy,
  message: string,
  requestDryRun = false,
): PolicyResultOutput {
  return {
    policy_id: meta.policy_id,
    policy_version: String(meta.version),
    policy_name: meta.name ?? "",
    dry_run: requestDryRun || meta.dry_run,
    decision: "ALLOW",
    would_decide: "ALLOW",
    matched_rules: [],
    actions: [],
    message,
  };
}

/** {@link verdictResult} as the proto EvaluationResult (through core/policy/decision-result.ts). */
export function toVerdictEvaluationResult(
  sets: VerdictSets,
  meta: PublishedPolicy,
  timing: Timing,
  requestDryRun = false,
): EvaluationResult {
  return toEvaluationResult(verdictResult(sets, meta, requestDryRun), timing);
}
