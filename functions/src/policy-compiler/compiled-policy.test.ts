import { beforeAll, describe, expect, it } from "vitest";
import {
  type CompiledPolicyInstance,
  evaluateCompiledPolicy,
  loadCompiledPolicy,
} from "../../../core/policy-bundle/compiled-policy.js";
import { meta } from "../../../core/policy-bundle/test-fixtures.js";
import { ActionType, Decision } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { resolveOpa } from "../../../scripts/opa.js";
import { createOpaPolicyCompiler } from "./opa-compiler.js";

const SOURCE = `package fulcrum.policy

deny contains {"message": "deletes are blocked", "rule_id": "no-delete", "priority": 5} if {
	some tool in input.tool_names
	startswith(tool, "delete_")
}

warn contains "large prompt" if count(input.input_text) > 10
`;

const NOW = new Date("2026-06-01T00:00:00Z");

describe("evaluateCompiledPolicy", () => {
  let policy: CompiledPolicyInstance;

  beforeAll(async () => {
    const compiler = createOpaPolicyCompiler({ opaBin: await resolveOpa() });
    const compiled = await compiler.compile({ kind: "rego", regoSource: SOURCE });
    policy = await loadCompiledPolicy(compiled.wasm);
  });

  it("decides from the compiled wasm", () => {
    const r = evaluateCompiledPolicy(
      policy,
      meta(),
      { tool_names: ["delete_db"], input_text: "a long prompt" },
      NOW,
    );
    expect(r.decision).toBe(Decision.DENY);
    expect(r.matchedRules.map((m) => [m.ruleId, m.action])).toEqual([
      ["no-delete", ActionType.DENY],
      ["", ActionType.WARN],
    ]);
    expect(r.message).toBe("DENY: deletes are blocked; large prompt");
    expect(r.evaluatedAt?.seconds).toBe(BigInt(NOW.getTime() / 1000));
  });

  it("allows when nothing matches", () => {
    const r = evaluateCompiledPolicy(policy, meta(), { tool_names: ["read"] }, NOW);
    expect(r.decision).toBe(Decision.ALLOW);
    expect(r.message).toBe("no rule matched");
  });

  it("answers WARN under WARN enforcement and ALLOW with the verdict in a dry run", () => {
    const ctx = { tool_names: ["delete_db"] };
    const warn = evaluateCompiledPolicy(policy, meta({ enforcement: "WARN" }), ctx, NOW);
    expect(warn.decision).toBe(Decision.WARN);
    const dry = evaluateCompiledPolicy(policy, meta(), ctx, NOW, { dryRun: true });
    expect([dry.decision, dry.wouldDecide, dry.dryRun]).toEqual([
      Decision.ALLOW,
      Decision.DENY,
      true,
    ]);
  });

  it("does not evaluate a policy out of scope or out of its window", () => {
    const ctx = { tool_names: ["delete_db"], workflow_id: "w2" };
    const scoped = evaluateCompiledPolicy(
      policy,
      meta({ scope: { workflow_ids: ["w1"] } }),
      ctx,
      NOW,
    );
    expect(scoped.decision).toBe(Decision.ALLOW);
    expect(scoped.matchedRules).toEqual([]);
    expect(scoped.message).toBe(
      "not applicable: the context is outside the policy scope (workflow_ids)",
    );
    const expired = evaluateCompiledPolicy(
      policy,
      meta({ expires_at: "2026-01-01T00:00:00Z" }),
      ctx,
      NOW,
    );
    expect(expired.decision).toBe(Decision.ALLOW);
    expect(expired.message).toMatch(/^not applicable: the policy expired/);
  });
});
