import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import {
  type Action,
  ActionType,
  Decision,
  EvaluationContextSchema,
  type EvaluationResult,
  type MatchedRule,
  Phase,
  RuleType,
  Severity,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { runOpa } from "../../scripts/opa.js";
import type { EvaluationCase } from "./policy-cases.js";

/**
 * Helpers of the differential test (test/e2e/differential.test.ts): the
 * reference's input and `opa eval` run, the normalisation of the reference's
 * decision and of the edge's protobuf reply into one comparable JSON shape,
 * and the report of the first differing path.
 */

// ---------------------------------------------------------------------------
// The reference's decision document (policies/README.md, Output).

export interface RefMatchedRule {
  rule_id: string;
  rule_name: string;
  rule_type: string;
  priority: number;
  action: string;
  severity?: string;
  reason: string;
  matched_conditions: string[];
  policy_id?: string;
}
export interface RefAction {
  type: string;
  rule_id?: string;
  policy_id?: string;
  message: string;
  severity: string;
  terminal: boolean;
}
export interface RefResult {
  policy_id: string;
  policy_version: string;
  policy_name: string;
  enforcement?: string;
  in_scope?: boolean;
  decision: string;
  dry_run: boolean;
  would_decide: string;
  matched_rules: RefMatchedRule[];
  actions: RefAction[];
  message: string;
}
export interface RefDecision {
  decision: string;
  would_decide: string;
  results: RefResult[];
  matched_rules: RefMatchedRule[];
  reasons: string[];
  actions: RefAction[];
}

/**
 * Normalisation of the reference's side. The optimised output no longer
 * carries four of the reference's fields (they were dropped from the wire
 * format on purpose, everything else was proven byte-identical):
 * results[].enforcement, results[].in_scope, matched_rules[].severity (in
 * results and at the top level) and rule_id/policy_id on actions (in results
 * and at the top level). They are removed here, and only they.
 */
export function normaliseReference(d: RefDecision): RefDecision {
  const rule = ({ severity: _severity, ...m }: RefMatchedRule): RefMatchedRule => m;
  const action = ({ rule_id: _rule, policy_id: _policy, ...a }: RefAction): RefAction => a;
  return {
    ...d,
    results: d.results.map(({ enforcement: _level, in_scope: _scope, ...r }) => ({
      ...r,
      matched_rules: r.matched_rules.map(rule),
      actions: r.actions.map(action),
    })),
    matched_rules: d.matched_rules.map(rule),
    actions: d.actions.map(action),
  };
}

/**
 * The reference's `input`: the REQUEST as the caller sent it, every context
 * field explicit. Not toDecisionInput() (edge code, which omits empty fields):
 * the reference reads an absent estimated_cost_usd as "not checked", while a
 * protobuf request always carries a cost (0 by default), so the explicit value
 * is the faithful one. Unset phase is "" (the reference's "unspecified").
 */
function referenceInput(c: EvaluationCase) {
  return {
    policy_ids: c.policyIds,
    dry_run: c.dryRun,
    context: {
      tenant_id: c.context.tenantId,
      workflow_id: c.context.workflowId,
      envelope_id: "",
      user_id: "",
      user_roles: c.context.userRoles,
      phase: c.context.phase,
      model_id: c.context.modelId,
      tool_names: c.context.toolNames,
      input_text: c.context.inputText,
      output_text: c.context.outputText,
      attributes: {},
      estimated_cost_usd: c.context.estimatedCostUsd,
      action: "",
    },
  };
}

/**
 * `opa eval` of the reference over `referenceFiles` and the tenant's raw
 * configuration, `<tenantDataDir>/<tenant id>.json`.
 */
export async function referenceDecision(
  c: EvaluationCase,
  referenceFiles: string[],
  tenantDataDir: string,
): Promise<RefDecision> {
  const args = ["eval", "--format", "json", "--stdin-input"];
  for (const file of referenceFiles) args.push("--data", file);
  args.push("--data", join(tenantDataDir, `${c.tenantId}.json`), "data.fulcrum.reference.decision");
  const { stdout } = await runOpa(args, { stdin: JSON.stringify(referenceInput(c)) });
  return JSON.parse(stdout).result[0].expressions[0].value as RefDecision;
}

// ---------------------------------------------------------------------------
// Both sides as the RPC response, in one comparable (plain JSON) shape.

/** EvaluatePolicy without policy_id: the combined result. */
export interface Combined {
  rpc: "EvaluatePolicy";
  result: ComparableResult;
}
/** EvaluatePolicies. */
export interface PerPolicy {
  rpc: "EvaluatePolicies";
  final_decision: string;
  results: ComparableResult[];
  actions: RefAction[];
  reasons: string[];
}
export type Comparable = Combined | PerPolicy;
export interface ComparableResult {
  policy_id: string;
  policy_version: string;
  policy_name: string;
  decision: string;
  would_decide: string;
  dry_run: boolean;
  matched_rules: RefMatchedRule[];
  actions: RefAction[];
  reasons: string[];
  message: string;
  metadata: Record<string, string>;
}

/**
 * What the RPC must answer for the reference's (normalised) decision. This is
 * the documented mapping of proto/README.md and policy_service.proto, written
 * out: a combined result folds every policy (policy_id empty, each matched rule
 * names its policy, metadata `policy_version.<id>`); per-policy results list
 * their own matched rules (without policy_id) and their reasons undecorated.
 */
export function expectedResponse(c: EvaluationCase, d: RefDecision): Comparable {
  if (c.policyIds.length === 0) {
    return {
      rpc: "EvaluatePolicy",
      result: {
        policy_id: "",
        policy_version: "",
        policy_name: "",
        decision: d.decision,
        would_decide: d.would_decide,
        dry_run: d.results.some((r) => r.dry_run),
        matched_rules: d.matched_rules,
        actions: d.actions,
        reasons: d.reasons,
        message:
          d.results.length === 0
            ? "no active policies for this tenant"
            : `${d.results.length} active policies evaluated`,
        metadata: Object.fromEntries(
          d.results.map((r) => [`policy_version.${r.policy_id}`, r.policy_version]),
        ),
      },
    };
  }
  const results = d.results.map(
    (r): ComparableResult => ({
      policy_id: r.policy_id,
      policy_version: r.policy_version,
      policy_name: r.policy_name,
      decision: r.decision,
      would_decide: r.would_decide,
      dry_run: r.dry_run,
      matched_rules: r.matched_rules,
      actions: r.actions,
      reasons: r.matched_rules.map((m) => m.reason),
      message: r.message,
      metadata: {},
    }),
  );
  return {
    rpc: "EvaluatePolicies",
    final_decision: d.decision,
    results,
    actions: d.actions,
    reasons: results.flatMap((r) => r.reasons),
  };
}

const edgeRule = (m: MatchedRule): RefMatchedRule => ({
  rule_id: m.ruleId,
  rule_name: m.ruleName,
  rule_type: RuleType[m.ruleType],
  priority: m.priority,
  action: ActionType[m.action],
  reason: m.reason,
  matched_conditions: m.matchedConditions,
  // Set on combined results only; per-policy results leave it empty.
  ...(m.policyId ? { policy_id: m.policyId } : {}),
});

function edgeAction(a: Action): RefAction & { parameters?: Record<string, string> } {
  return {
    type: ActionType[a.type],
    message: a.message,
    severity: Severity[a.severity],
    terminal: a.terminal,
    // The reference emits no action parameters: any would be a difference.
    ...(Object.keys(a.parameters).length > 0 ? { parameters: a.parameters } : {}),
  };
}

/** Transport-only fields (evaluated_at, durations, decision_id) are left out. */
const edgeResult = (r: EvaluationResult): ComparableResult => ({
  policy_id: r.policyId,
  policy_version: r.policyVersion,
  policy_name: r.policyName,
  decision: Decision[r.decision],
  would_decide: Decision[r.wouldDecide],
  dry_run: r.dryRun,
  matched_rules: r.matchedRules.map(edgeRule),
  actions: r.actions.map(edgeAction),
  reasons: r.reasons,
  message: r.message,
  metadata: r.metadata,
});

function contextOf(c: EvaluationCase) {
  return create(EvaluationContextSchema, {
    ...c.context,
    phase: c.context.phase ? Phase[c.context.phase as keyof typeof Phase] : Phase.UNSPECIFIED,
  });
}

/** The edge Worker's answer at `baseUrl`, through Connect. */
export async function edgeResponse(c: EvaluationCase, baseUrl: string): Promise<Comparable> {
  const client = createClient(PolicyService, createConnectTransport({ baseUrl }));
  const context = contextOf(c);
  if (c.policyIds.length === 0) {
    const { result } = await client.evaluatePolicy({ context, dryRun: c.dryRun });
    if (!result) throw new Error("no result");
    return { rpc: "EvaluatePolicy", result: edgeResult(result) };
  }
  const response = await client.evaluatePolicies({
    policyIds: c.policyIds,
    context,
    dryRun: c.dryRun,
  });
  return {
    rpc: "EvaluatePolicies",
    final_decision: Decision[response.finalDecision],
    results: response.results.map(edgeResult),
    actions: response.actions.map(edgeAction),
    reasons: response.reasons,
  };
}

/** JSON with object keys sorted: key order is not part of either contract. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** The path of the first difference between two JSON values, for the report. */
export function firstDifference(a: unknown, b: unknown, path = "$"): string | undefined {
  if (canonical(a) === canonical(b)) return undefined;
  if (a && b && typeof a === "object" && typeof b === "object") {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      const d = firstDifference(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`,
      );
      if (d) return d;
    }
  }
  return `${path}: reference ${JSON.stringify(a)} vs edge ${JSON.stringify(b)}`;
}

export const decisionOf = (r: Comparable): string =>
  r.rpc === "EvaluatePolicy" ? r.result.decision : r.final_decision;
export const matchedOf = (r: Comparable): number =>
  r.rpc === "EvaluatePolicy"
    ? r.result.matched_rules.length
    : r.results.reduce((n, x) => n + x.matched_rules.length, 0);

/** Runs `fn` over `items` with at most `limit` in flight (opa eval is a process per case). */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>) {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i] as T);
      }
    }),
  );
  return out;
}
