import { mkdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
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
import { freePort } from "../../scripts/lib/ports.js";
import { type RunningWorker, startWranglerDev } from "../../scripts/lib/wrangler-dev.js";
import { runOpa } from "../../scripts/opa.js";
import { type EvaluationCase, generateCases } from "../harness/policy-cases.js";

/**
 * Differential test: for a few hundred generated tenant configurations and
 * requests, the decision the running edge Worker returns (through Connect:
 * prepareTenantData + the optimised wasm + expandDecision + the RPC mapping)
 * equals what `opa eval` computes with the REFERENCE specification
 * (policies/reference/, `data.fulcrum.reference.decision`) over the RAW
 * tenant configuration and the same request. No TypeScript of the edge's
 * decision path is used on the expected side: the oracle is independent.
 */
const SEED = Number(process.env.FULCRUM_DIFF_SEED ?? 20261124);
const TENANTS = 60;
const PER_TENANT = 5;

const root = join(import.meta.dirname, "..", "..");
const workDir = join(root, ".tmp", "differential");
const referenceDir = join(root, "policies", "reference");
const referenceFiles = readdirSync(referenceDir)
  .filter((f) => f.endsWith(".rego") && !f.endsWith("_test.rego"))
  .map((f) => join(referenceDir, f));

const { configs, cases } = generateCases(SEED, TENANTS, PER_TENANT);
let worker: RunningWorker;

beforeAll(async () => {
  rmSync(workDir, { recursive: true, force: true });
  mkdirSync(workDir, { recursive: true });
  // Generated data holds no single quote, so a single-quoted dotenv value carries the JSON as is.
  const envFile = join(workDir, "edge.env");
  writeFileSync(envFile, `TENANT_CONFIGS='${JSON.stringify(configs)}'\n`);
  // The reference reads the raw configuration: data.tenant_id, data.policies.
  for (const [tenantId, config] of Object.entries(configs)) {
    writeFileSync(join(workDir, `${tenantId}.json`), JSON.stringify(config));
  }
  worker = await startWranglerDev(await freePort(), { envFile });
}, 120_000);

afterAll(async () => {
  await worker?.stop();
});

// ---------------------------------------------------------------------------
// The reference's decision document (policies/README.md, Output).

interface RefMatchedRule {
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
interface RefAction {
  type: string;
  rule_id?: string;
  policy_id?: string;
  message: string;
  severity: string;
  terminal: boolean;
}
interface RefResult {
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
interface RefDecision {
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
function normaliseReference(d: RefDecision): RefDecision {
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

async function referenceDecision(c: EvaluationCase): Promise<RefDecision> {
  const args = ["eval", "--format", "json", "--stdin-input"];
  for (const file of referenceFiles) args.push("--data", file);
  args.push("--data", join(workDir, `${c.tenantId}.json`), "data.fulcrum.reference.decision");
  const { stdout } = await runOpa(args, { stdin: JSON.stringify(referenceInput(c)) });
  return JSON.parse(stdout).result[0].expressions[0].value as RefDecision;
}

// ---------------------------------------------------------------------------
// Both sides as the RPC response, in one comparable (plain JSON) shape.

/** EvaluatePolicy without policy_id: the combined result. */
interface Combined {
  rpc: "EvaluatePolicy";
  result: ComparableResult;
}
/** EvaluatePolicies. */
interface PerPolicy {
  rpc: "EvaluatePolicies";
  final_decision: string;
  results: ComparableResult[];
  actions: RefAction[];
  reasons: string[];
}
type Comparable = Combined | PerPolicy;
interface ComparableResult {
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
function expectedResponse(c: EvaluationCase, d: RefDecision): Comparable {
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

async function edgeResponse(c: EvaluationCase): Promise<Comparable> {
  const client = createClient(PolicyService, createConnectTransport({ baseUrl: worker.url }));
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
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** The path of the first difference between two JSON values, for the report. */
function firstDifference(a: unknown, b: unknown, path = "$"): string | undefined {
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

const decisionOf = (r: Comparable): string =>
  r.rpc === "EvaluatePolicy" ? r.result.decision : r.final_decision;
const matchedOf = (r: Comparable): number =>
  r.rpc === "EvaluatePolicy"
    ? r.result.matched_rules.length
    : r.results.reduce((n, x) => n + x.matched_rules.length, 0);

/** Runs `fn` over `items` with at most `limit` in flight (opa eval is a process per case). */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>) {
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

describe(`differential: edge (wasm) vs reference Rego under opa eval (${cases.length} cases, seed ${SEED})`, () => {
  it("covers every decision, with and without named policies", () => {
    // Guards the generator: a differential test over only ALLOWs would prove little.
    expect(cases.length).toBeGreaterThanOrEqual(300);
    expect(cases.some((c) => c.policyIds.length === 0)).toBe(true);
    expect(cases.some((c) => c.policyIds.length > 1)).toBe(true);
  });

  it("gives the same decision document (minus the dropped fields) for every case", async () => {
    const pairs = await mapLimit(cases, 4, async (c) => {
      const reference = await referenceDecision(c);
      return {
        c,
        want: expectedResponse(c, normaliseReference(reference)),
        got: await edgeResponse(c),
      };
    });
    const decisions = new Set(pairs.map((p) => decisionOf(p.want)));
    expect(decisions).toEqual(new Set(["ALLOW", "WARN", "REQUIRE_APPROVAL", "DENY"]));
    const mismatches = pairs.filter((p) => canonical(p.want) !== canonical(p.got));
    for (const m of mismatches.slice(0, 3)) {
      console.log(
        JSON.stringify(
          {
            difference: firstDifference(m.want, m.got),
            case: m.c,
            config: configs[m.c.tenantId],
            reference: m.want,
            edge: m.got,
          },
          null,
          2,
        ),
      );
    }
    expect(mismatches.map((m) => firstDifference(m.want, m.got))).toEqual([]);
    // At least a fifth of the cases must exercise matched rules, not only empty ALLOWs.
    expect(pairs.filter((p) => matchedOf(p.want) > 0).length).toBeGreaterThan(cases.length / 5);
  }, 300_000);
});
