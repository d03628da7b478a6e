/**
 * The verdict of a compiled tenant policy must read exactly like the
 * governance library's for the same matches: each case runs a library policy
 * (one TOOL_RESTRICTION rule per action, all matching) through the committed
 * governance wasm and expandDecision, and the equivalent verdict sets through
 * verdictResult, and compares everything but matched_conditions and rule_type.
 */
import { readFileSync } from "node:fs";
import { loadPolicy } from "@open-policy-agent/opa-wasm";
import { beforeAll, describe, expect, it } from "vitest";
import { expandDecision } from "../../../core/policy/expand-decision.js";
import { prepareTenantData } from "../../../core/policy/prepare-tenant-data.js";
import type {
  Enforcement,
  PolicyResultOutput,
  RawDecisionOutput,
  RuleAction,
  Severity,
  TenantConfig,
} from "../../../core/policy/tenant-config.js";
import type { VerdictSets } from "../../../core/policy-bundle/published-policy.js";
import { meta } from "../../../core/policy-bundle/test-fixtures.js";
import { toVerdictEvaluationResult, verdictResult } from "../../../core/policy-bundle/verdict.js";
import { Decision } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";

const SET: Record<RuleAction, keyof VerdictSets> = {
  DENY: "deny",
  REQUIRE_APPROVAL: "require_approval",
  WARN: "warn",
  AUDIT: "audit",
};

const ACTION_SETS: RuleAction[][] = [
  [],
  ["DENY"],
  ["WARN"],
  ["REQUIRE_APPROVAL"],
  ["AUDIT"],
  ["WARN", "DENY"],
  ["AUDIT", "REQUIRE_APPROVAL", "WARN"],
  ["AUDIT", "WARN"],
];
const LEVELS: Enforcement[] = ["AUDIT", "WARN", "BLOCK", "TERMINATE"];

const severity = (k: number): Severity | undefined => (k === 0 ? "CRITICAL" : undefined);

function libraryResult(
  evaluate: (input: unknown) => RawDecisionOutput,
  actions: RuleAction[],
  enforcement: Enforcement,
  dryRun: boolean,
  requestDryRun: boolean,
): PolicyResultOutput {
  const config: TenantConfig = {
    tenant_id: "t1",
    policies: {
      p1: {
        name: "Policy one",
        version: "3",
        status: "ACTIVE",
        enforcement,
        dry_run: dryRun,
        rules: actions.map((action, k) => ({
          id: `r${k}`,
          name: `rule ${k}`,
          type: "TOOL_RESTRICTION",
          denied_tools: ["x"],
          action,
          message: `message ${k}`,
          priority: 10 - k,
          ...(severity(k) ? { severity: severity(k) } : {}),
        })),
      },
    },
  };
  const prepared = prepareTenantData(config);
  const input = { policy_ids: ["p1"], dry_run: requestDryRun, context: { tool_names: ["x"] } };
  const raw = evaluate({ prepared, input });
  return expandDecision(prepared, raw).results[0] as PolicyResultOutput;
}

function sets(actions: RuleAction[]): VerdictSets {
  const out: VerdictSets = { deny: [], require_approval: [], warn: [], audit: [] };
  actions.forEach((action, k) => {
    const sev = severity(k);
    out[SET[action]].push({
      message: `message ${k}`,
      rule_id: `r${k}`,
      rule_name: `rule ${k}`,
      priority: 10 - k,
      ...(sev ? { severity: sev } : {}),
    });
  });
  return out;
}

const comparable = (r: PolicyResultOutput) => ({
  ...r,
  matched_rules: r.matched_rules.map(({ matched_conditions: _c, rule_type: _t, ...m }) => m),
});

describe("verdictResult agrees with the governance library", () => {
  let evaluate: (doc: { prepared: unknown; input: unknown }) => RawDecisionOutput;

  beforeAll(async () => {
    const wasm = readFileSync(new URL("../../../policies/build/governance.wasm", import.meta.url));
    const policy = await loadPolicy(wasm);
    evaluate = ({ prepared, input }) => {
      policy.setData(prepared as object);
      const [first] = policy.evaluate(input, "fulcrum/governance/decision") as [
        { result: RawDecisionOutput },
      ];
      return first.result;
    };
  });

  const cases = ACTION_SETS.flatMap((actions) =>
    LEVELS.flatMap((level) =>
      [
        [false, false],
        [true, false],
        [false, true],
      ].map(([dry, requestDry]) => [actions.join("+") || "none", level, dry, requestDry] as const),
    ),
  );

  it.each(cases)("%s, %s, dry run %s, request dry run %s", (label, level, dry, requestDry) => {
    const actions = label === "none" ? [] : (label.split("+") as RuleAction[]);
    const expected = libraryResult(
      (input) => evaluate(input as { prepared: unknown; input: unknown }),
      actions,
      level,
      dry as boolean,
      requestDry as boolean,
    );
    const actual = verdictResult(
      sets(actions),
      meta({ enforcement: level, dry_run: dry as boolean }),
      requestDry as boolean,
    );
    expect(expected.matched_rules).toHaveLength(actions.length);
    expect(comparable(actual)).toEqual(comparable(expected));
  });
});

describe("toVerdictEvaluationResult", () => {
  it("renders the proto result with actions, reasons and the TERMINATE action", () => {
    const result = toVerdictEvaluationResult(
      { deny: [{ message: "no", rule_id: "r1" }], require_approval: [], warn: [], audit: [] },
      meta({ enforcement: "TERMINATE" }),
      { evaluatedAtMs: 0, durationMs: 1 },
    );
    expect(result.decision).toBe(Decision.DENY);
    expect(result.wouldDecide).toBe(Decision.DENY);
    expect(result.policyVersion).toBe("3");
    expect(result.reasons).toEqual(["no"]);
    expect(result.actions.map((a) => [a.type, a.terminal])).toEqual([
      [2, true],
      [10, true],
    ]);
  });

  it("fails closed on an answer that is not verdict sets", () => {
    const bad = { deny: "x" } as unknown as VerdictSets;
    expect(() => verdictResult(bad, meta())).toThrow(TypeError);
    const item = { deny: [{ rule_id: "r" }] } as unknown as VerdictSets;
    expect(() => verdictResult(item, meta())).toThrow(/deny\[0\]/);
  });
});
