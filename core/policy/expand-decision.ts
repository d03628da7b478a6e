/**
 * Rebuilds the full {@link DecisionOutput} from the Rego's minimal answer
 * ({@link RawDecisionOutput}) and the tenant's prepared data.
 *
 * The Rego returns only what depends on the request (which policies ran,
 * their verdicts, the matched rules' conditions and generated reasons), because
 * opa-wasm serialises every output byte as JSON on each call. Everything else
 * is a rendering of those facts with the prepared configuration: rule names,
 * severities, actions after enforcement and dry run, messages, and the
 * flattened top-level lists. This is that rendering, string for string what
 * the Rego used to emit (policies/README.md, Output), including the key order
 * of the wasm's JSON, so responses and logged outputs are unchanged.
 *
 * Pure and web-standard: used by the edge Worker, the bench and the tests.
 */
import type {
  PreparedPolicy,
  PreparedRuleInfo,
  PreparedTenantData,
} from "./prepare-tenant-data.js";
import {
  type ActionOutput,
  type ActionType,
  DECISION_RANK,
  type DecisionName,
  type DecisionOutput,
  type Enforcement,
  type MatchedRuleOutput,
  type PolicyResultOutput,
  type RawDecisionOutput,
  type RawPolicyResult,
  type RuleAction,
} from "./tenant-config.js";

const BY_RANK: readonly DecisionName[] = ["ALLOW", "WARN", "REQUIRE_APPROVAL", "DENY"];

/**
 * The rank of a decision or rule action; AUDIT (a rule action that never
 * changes a verdict) ranks as ALLOW. Anything else is not a decision: it
 * throws, never counts as ALLOW (fail closed).
 */
function rank(value: string): number {
  if (value === "AUDIT") return 0;
  if (typeof value !== "string" || !Object.hasOwn(DECISION_RANK, value)) {
    throw new TypeError(`unknown decision ${JSON.stringify(value)}`);
  }
  return DECISION_RANK[value as DecisionName];
}

/** A decision of the raw output: one of DecisionName, else it throws. */
function decisionName(value: unknown, what: string): DecisionName {
  if (typeof value !== "string" || !Object.hasOwn(DECISION_RANK, value)) {
    throw new TypeError(`${what}: unknown decision ${JSON.stringify(value)}`);
  }
  return value as DecisionName;
}

/** The strongest decision among actions; AUDIT (unranked) never counts. */
function strongest(actions: readonly string[]): DecisionName {
  let best = 0;
  for (const a of actions) best = Math.max(best, rank(a));
  return BY_RANK[best] as DecisionName;
}

/** A verdict capped by the policy's enforcement (enforcement.rego `capped`). */
function capped(verdict: DecisionName, level: Enforcement): DecisionName {
  if (level === "AUDIT") return "ALLOW";
  if (level === "WARN" && rank(verdict) > 1) return "WARN";
  return verdict;
}

/** A rule action once enforcement (and dry run) apply, as enforcement.rego caps verdicts. */
function effectiveAction(action: RuleAction, level: Enforcement, dryRun: boolean): ActionType {
  if (dryRun || action === "AUDIT" || level === "AUDIT") return "AUDIT";
  if (level === "WARN" && rank(action) > 1) return "WARN";
  return action;
}

// Objects are built with the keys in the order the wasm runtime emitted them
// (its object hash order), so JSON.stringify of the output is byte-identical
// to what the Rego returned before the boundary was made minimal.
const action = (
  type: ActionType,
  message: string,
  severity: ActionOutput["severity"],
): ActionOutput => ({ severity, terminal: type === "DENY" || type === "TERMINATE", message, type });

const TERMINATE = "policy enforcement is TERMINATE: the execution must stop";

function result(
  policy: PreparedPolicy,
  r: RawPolicyResult,
  dryRun: boolean,
  decision: DecisionName,
  wouldDecide: DecisionName,
  matched: MatchedRuleOutput[],
  actions: ActionOutput[],
  message: string,
): PolicyResultOutput {
  return {
    policy_version: policy.policy_version,
    would_decide: wouldDecide,
    actions,
    dry_run: dryRun,
    decision,
    matched_rules: matched,
    message,
    policy_name: policy.policy_name,
    policy_id: r.id,
  };
}

function expandResult(policy: PreparedPolicy, r: RawPolicyResult, requestDry: boolean) {
  const dryRun = requestDry || policy.dry_run;
  if (!r.matched) {
    // Nothing matched (or out of scope): the Rego emits no verdict, and one
    // here would be a result this function does not understand.
    if (r.decision !== undefined || r.would_decide !== undefined) {
      throw new TypeError(`policy ${r.id}: a decision without matched rules`);
    }
    const message = r.misses
      ? `not applicable: the context is outside the policy scope (${r.misses.join(", ")})`
      : "no rule matched";
    return result(policy, r, dryRun, "ALLOW", "ALLOW", [], [], message);
  }
  const level = policy.enforcement;
  const infos: PreparedRuleInfo[] = [];
  const matched = r.matched.map(([k, conditions, generated]): MatchedRuleOutput => {
    const info = policy.rule_info[k];
    if (!info) throw new TypeError(`policy ${r.id} has no rule ${k}`);
    infos.push(info);
    return {
      matched_conditions: conditions,
      action: info.action,
      reason: generated ?? info.message,
      rule_name: info.rule_name,
      priority: info.priority,
      rule_id: info.rule_id,
      rule_type: info.rule_type,
    };
  });
  const actions = matched.map((m, i) => {
    const info = infos[i] as PreparedRuleInfo;
    const type = effectiveAction(info.action, level, dryRun);
    const text = dryRun
      ? `dry run: would ${effectiveAction(info.action, level, false)}: ${m.reason}`
      : m.reason;
    return action(type, text, type === "AUDIT" ? "INFO" : info.severity);
  });
  // The Rego omits ALLOW verdicts (`decision` when ALLOW or a dry run,
  // `would_decide` when equal to `decision`), so a missing verdict is read as
  // ALLOW only where the prepared rules and enforcement agree that it is one;
  // a missing, unknown or inconsistent verdict throws instead (fail closed).
  const decision = decisionName(r.decision ?? "ALLOW", `policy ${r.id} decision`);
  const verdict = decisionName(r.would_decide ?? decision, `policy ${r.id} would_decide`);
  const raw = strongest(infos.map((info) => info.action));
  const expected = capped(raw, level);
  if (verdict !== expected || decision !== (dryRun ? "ALLOW" : expected)) {
    throw new TypeError(
      `policy ${r.id}: verdict ${JSON.stringify([r.decision, r.would_decide])} does not follow from its matched rules (${expected}${dryRun ? ", dry run" : ""})`,
    );
  }
  if (level === "TERMINATE" && verdict === "DENY" && !dryRun) {
    actions.push(action("TERMINATE", TERMINATE, "CRITICAL"));
  }
  const summary = matched.map((m) => m.reason).join("; ");
  const message = dryRun
    ? `dry run: would ${verdict}: ${summary}`
    : level === "AUDIT" && raw !== "ALLOW"
      ? `audit only, rules would ${raw}: ${summary}`
      : verdict !== raw
        ? `${verdict} (capped from ${raw} by WARN enforcement): ${summary}`
        : `${verdict}: ${summary}`;
  return result(policy, r, dryRun, decision, verdict, matched, actions, message);
}

function mismatch(tenant: string, loaded: string): DecisionOutput {
  const reason = `context tenant '${tenant}' does not match the loaded tenant configuration '${loaded}'`;
  return {
    would_decide: "DENY",
    results: [],
    actions: [action("DENY", reason, "CRITICAL")],
    decision: "DENY",
    matched_rules: [],
    reasons: [reason],
  };
}

/**
 * The DecisionOutput for `raw`, the value of the `decision` entrypoint
 * evaluated against `prepared` (the same document given to setData). Throws a
 * TypeError when `raw` does not fit `prepared` (a policy or rule it lacks) or
 * holds a missing, unknown or inconsistent verdict: never an ALLOW by default.
 */
export function expandDecision(
  prepared: PreparedTenantData,
  raw: RawDecisionOutput,
): DecisionOutput {
  if (typeof raw !== "object" || raw === null) throw new TypeError("no decision");
  if (raw.tenant !== undefined) return mismatch(raw.tenant, prepared.tenant_id);
  if (!Array.isArray(raw.results)) throw new TypeError("no results");
  const requestDry = raw.dry_run === true;
  const results = raw.results.map((r) => {
    const policy = prepared.policies[r.id];
    if (!policy) throw new TypeError(`unknown policy ${r.id}`);
    return expandResult(policy, r, requestDry);
  });
  return combineResults(results);
}

/**
 * Several policies' results as one decision: the strongest decision and
 * would_decide, every matched rule (with its policy id), one reason per matched
 * rule ("<reason> (rule <id> of policy <id>)", "dry run: " first for dry-run
 * policies) and every action, in result order. The edge's bundle evaluation
 * combines with this too (core/policy-bundle/evaluate-bundle.ts).
 */
export function combineResults(results: PolicyResultOutput[]): DecisionOutput {
  const matchedRules: DecisionOutput["matched_rules"] = [];
  const reasons: string[] = [];
  const actions: ActionOutput[] = [];
  for (const r of results) {
    const prefix = r.dry_run ? "dry run: " : "";
    for (const m of r.matched_rules) {
      matchedRules.push({
        matched_conditions: m.matched_conditions,
        action: m.action,
        reason: m.reason,
        rule_name: m.rule_name,
        policy_id: r.policy_id,
        priority: m.priority,
        rule_id: m.rule_id,
        rule_type: m.rule_type,
      });
      reasons.push(`${prefix}${m.reason} (rule ${m.rule_id} of policy ${r.policy_id})`);
    }
    actions.push(...r.actions);
  }
  return {
    would_decide: strongest(results.map((r) => r.would_decide)),
    results,
    actions,
    decision: strongest(results.map((r) => r.decision)),
    matched_rules: matchedRules,
    reasons,
  };
}
