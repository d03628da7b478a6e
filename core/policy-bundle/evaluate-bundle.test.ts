import { describe, expect, it } from "vitest";
import { FulcrumError } from "../errors/fulcrum-error.js";
import { expandDecision } from "../policy/expand-decision.js";
import type { PreparedTenantData } from "../policy/prepare-tenant-data.js";
import type { CompiledPolicyInstance } from "./compiled-policy.js";
import {
  checkBundleDecision,
  combineResults,
  type EvaluateBundleRequest,
  evaluateBundle,
  evaluationFailed,
  PolicyEvaluationError,
  selectPolicies,
} from "./evaluate-bundle.js";
import type { VerdictSets } from "./published-policy.js";
import { meta } from "./test-fixtures.js";

// Stand-in instances: the same evaluation with policies compiled by OPA is
// functions/src/policy-compiler/evaluate-bundle.test.ts (Node and the OPA binary).

const sets = (s: Partial<VerdictSets>): VerdictSets => ({
  deny: [],
  require_approval: [],
  warn: [],
  audit: [],
  ...s,
});

/** An instance answering `answer(input)` as the entrypoint's value (or throwing). */
function instance(answer: (input: Record<string, unknown>) => unknown): CompiledPolicyInstance {
  return {
    evaluate: (input: Record<string, unknown>, entrypoint: string) => {
      expect(entrypoint).toBe("fulcrum/entry/result");
      return [{ result: answer(input) }];
    },
  } as unknown as CompiledPolicyInstance;
}

const hasTool = (input: Record<string, unknown>, tool: string) =>
  Array.isArray(input.tool_names) && input.tool_names.includes(tool);

const A = meta({ policy_id: "a", name: "Deletes", wasm_sha256: "a".repeat(64), priority: 10 });
const B = meta({ policy_id: "b", name: "Payments", wasm_sha256: "b".repeat(64), version: 1 });
const instances = new Map([
  [
    A.wasm_sha256,
    instance((input) =>
      sets({
        deny: hasTool(input, "delete_db")
          ? [{ message: "deletes are blocked", rule_id: "no-delete", priority: 5 }]
          : [],
        warn: hasTool(input, "delete_db") ? [{ message: "careful", rule_id: "w" }] : [],
      }),
    ),
  ],
  [
    B.wasm_sha256,
    instance((input) =>
      sets({
        require_approval: hasTool(input, "pay") ? [{ message: "approve", rule_id: "pay" }] : [],
      }),
    ),
  ],
]);

const request = (overrides: Partial<EvaluateBundleRequest> = {}): EvaluateBundleRequest => ({
  context: { tool_names: ["delete_db", "pay"] },
  policyIds: [],
  dryRun: false,
  nowMs: Date.parse("2026-06-01T00:00:00Z"),
  ...overrides,
});

describe("evaluateBundle", () => {
  it("combines the results in bundle order: strongest decision, reasons, actions", () => {
    const { output } = evaluateBundle(instances, [A, B], request());
    expect([output.decision, output.would_decide]).toEqual(["DENY", "DENY"]);
    expect(output.results.map((r) => r.policy_id)).toEqual(["a", "b"]);
    expect(output.reasons).toEqual([
      "deletes are blocked (rule no-delete of policy a)",
      "careful (rule w of policy a)",
      "approve (rule pay of policy b)",
    ]);
    expect(output.matched_rules.map((m) => [m.policy_id, m.rule_id])).toEqual([
      ["a", "no-delete"],
      ["a", "w"],
      ["b", "pay"],
    ]);
    expect(output.actions.map((a) => a.type)).toEqual(["DENY", "WARN", "REQUIRE_APPROVAL"]);
  });

  it("renders the combination exactly as the governance library's expandDecision", () => {
    const { output } = evaluateBundle(instances, [{ ...A, dry_run: true }, B], request());
    // The governance library's rendering of the same per-policy facts.
    const prepared = {
      tenant_id: "t1",
      policies: Object.fromEntries(
        output.results.map((r) => [
          r.policy_id,
          {
            policy_version: r.policy_version,
            policy_name: r.policy_name,
            enforcement: "BLOCK",
            dry_run: r.dry_run,
            rule_info: r.matched_rules.map((m, i) => ({
              rule_id: m.rule_id,
              rule_name: m.rule_name,
              rule_type: m.rule_type,
              priority: m.priority,
              action: m.action,
              message: m.reason,
              severity: r.actions[i]?.type === "AUDIT" ? "HIGH" : r.actions[i]?.severity,
            })),
          },
        ]),
      ),
    } as unknown as PreparedTenantData;
    const library = expandDecision(prepared, {
      results: output.results.map((r) => ({
        id: r.policy_id,
        ...(r.matched_rules.length > 0
          ? {
              matched: r.matched_rules.map((_, k) => [k, []] as [number, string[]]),
              ...(r.decision !== "ALLOW" ? { decision: r.decision } : {}),
              ...(r.would_decide !== r.decision ? { would_decide: r.would_decide } : {}),
            }
          : {}),
      })),
    });
    const strip = (o: typeof output) =>
      JSON.parse(JSON.stringify({ ...o, results: o.results.map((r) => r.policy_id) }));
    expect(strip(output)).toEqual(strip(library));
    expect(JSON.stringify(output.matched_rules)).toBe(JSON.stringify(library.matched_rules));
  });

  it("evaluates the named policies only, in the named order, each once", () => {
    const { output } = evaluateBundle(instances, [A, B], request({ policyIds: ["b", "a", "b"] }));
    expect(output.results.map((r) => r.policy_id)).toEqual(["b", "a"]);
    expect(output.actions.map((a) => a.type)).toEqual(["REQUIRE_APPROVAL", "DENY", "WARN"]);
  });

  it("keeps a dry-run policy's verdict in would_decide only, reasons prefixed", () => {
    const { output } = evaluateBundle(instances, [{ ...A, dry_run: true }, B], request());
    expect([output.decision, output.would_decide]).toEqual(["REQUIRE_APPROVAL", "DENY"]);
    expect(output.reasons[0]).toBe("dry run: deletes are blocked (rule no-delete of policy a)");
    expect(output.reasons[2]).toBe("approve (rule pay of policy b)");
  });

  it("evaluates every policy as a dry run when the request is one", () => {
    const { output } = evaluateBundle(instances, [A, B], request({ dryRun: true }));
    expect([output.decision, output.would_decide]).toEqual(["ALLOW", "DENY"]);
    expect(output.reasons.every((r) => r.startsWith("dry run: "))).toBe(true);
    expect(output.actions.every((a) => a.type === "AUDIT")).toBe(true);
  });

  it("does not evaluate a policy outside its scope or window (nor needs its instance)", () => {
    const out = { ...A, wasm_sha256: "f".repeat(64), scope: { workflow_ids: ["w1"] } };
    const later = { ...B, effective_at: "2026-07-01T00:00:00Z" };
    const { output } = evaluateBundle(instances, [out, later], request());
    expect(output.decision).toBe("ALLOW");
    expect(output.results.map((r) => r.message)).toEqual([
      "not applicable: the context is outside the policy scope (workflow_ids)",
      "not applicable: the policy is not in effect before 2026-07-01T00:00:00Z",
    ]);
  });

  it("throws NotFound naming the missing policies", () => {
    expect(() => evaluateBundle(instances, [A], request({ policyIds: ["x"] }))).toThrow(
      new FulcrumError("NotFound", 'policy "x" is not active for this tenant'),
    );
    expect(() => selectPolicies([A], ["x", "a", "y"])).toThrow(
      'policies "x", "y" are not active for this tenant',
    );
    expect(selectPolicies([A, B], []).map((p) => p.policy_id)).toEqual(["a", "b"]);
  });

  it.each([
    [
      "a trap",
      () => {
        throw "abort: var assignment conflict";
      },
    ],
    ["no value", () => undefined],
    ["a set that is not a list", () => ({ ...sets({}), deny: "x" })],
    ["an item without a message", () => sets({ warn: [{ rule_id: "r" } as never] })],
  ])("throws, never allows, on %s", (_, answer) => {
    const bad = new Map([...instances, [B.wasm_sha256, instance(answer)]]);
    const run = () => evaluateBundle(bad, [A, B], request({ context: {} }));
    expect(run).toThrow(PolicyEvaluationError);
    expect(run).toThrow(/^policy "b" version 1 failed: /);
  });

  it("throws when a policy's instance is missing", () => {
    expect(() => evaluateBundle(new Map(), [A], request())).toThrow(/wasm a{64} is not loaded/);
  });

  it("gives ALLOW with nothing to combine", () => {
    expect(combineResults([])).toEqual({
      would_decide: "ALLOW",
      results: [],
      actions: [],
      decision: "ALLOW",
      matched_rules: [],
      reasons: [],
    });
  });
});

describe("checkBundleDecision / evaluationFailed", () => {
  it("passes an evaluation and rejects anything without valid verdicts", () => {
    const real = evaluateBundle(instances, [A, B], request());
    expect(checkBundleDecision(structuredClone(real))).toEqual(real);
    const broken = structuredClone(real);
    (broken.output as { decision: string }).decision = "MAYBE";
    expect(() => checkBundleDecision(broken)).toThrow(TypeError);
    const result = structuredClone(real);
    (result.output.results[1] as { decision: unknown }).decision = undefined;
    expect(() => checkBundleDecision(result)).toThrow(TypeError);
    for (const bad of [null, {}, { output: {}, durationMs: 0 }, { output: real.output }]) {
      expect(() => checkBundleDecision(bad)).toThrow(TypeError);
    }
  });

  it("maps a failure to Internal with a safe message, keeping the cause", () => {
    const cause = new Error("wasm trap at 0x1234");
    expect(evaluationFailed(cause)).toMatchObject({
      kind: "Internal",
      message: "policy evaluation failed",
      cause,
      retry: false,
    });
  });
});
