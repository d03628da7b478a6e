import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ActionType } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { EnforcementLevel, PolicySchema } from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { definitionOf, fromStoredDefinition, mergeVersioned } from "./policy-definition.js";

const rule = (parameters: Record<string, string>) => ({
  name: "r",
  actions: [{ type: ActionType.DENY, parameters }],
});

describe("definitionOf", () => {
  it("hashes equal definitions alike whatever the map order, and ignores non-versioned fields", () => {
    const a = definitionOf(
      create(PolicySchema, { name: "a", description: "x", rules: [rule({ b: "2", a: "1" })] }),
    );
    const b = definitionOf(
      create(PolicySchema, { name: "b", tags: ["t"], rules: [rule({ a: "1", b: "2" })] }),
    );
    expect(a.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(a.sha256).toBe(b.sha256);
    expect(JSON.stringify(a.json)).toBe(JSON.stringify(b.json));
    expect(fromStoredDefinition(a.json).sha256).toBe(a.sha256);
  });

  it("applies the defaults (BLOCK, rule ids) before hashing", () => {
    const implicit = definitionOf(create(PolicySchema, { regoSource: "package fulcrum.policy\n" }));
    const explicit = definitionOf(
      create(PolicySchema, {
        regoSource: "package fulcrum.policy\n",
        enforcement: EnforcementLevel.BLOCK,
      }),
    );
    expect(implicit.sha256).toBe(explicit.sha256);
    const ids = definitionOf(
      create(PolicySchema, { rules: [rule({}), { ...rule({}), ruleId: "rule-1" }] }),
    );
    expect(ids.policy.rules.map((r) => r.ruleId)).toEqual(["rule-2", "rule-1"]);
  });

  it("refuses both sources, none, repeated rule ids and an inverted window", () => {
    expect(() => definitionOf(create(PolicySchema, {}))).toThrow(/rules or rego_source/);
    expect(() =>
      definitionOf(create(PolicySchema, { regoSource: "x", rules: [rule({})] })),
    ).toThrow(/not both/);
    expect(() =>
      definitionOf(
        create(PolicySchema, {
          rules: [
            { ...rule({}), ruleId: "x" },
            { ...rule({}), ruleId: "x" },
          ],
        }),
      ),
    ).toThrow(/rules\[1\]\.rule_id/);
    expect(() =>
      definitionOf(
        create(PolicySchema, {
          regoSource: "x",
          effectiveAt: { seconds: 10n },
          expiresAt: { seconds: 5n },
        }),
      ),
    ).toThrow(/expires_at/);
  });

  it("switches between rules and Rego when the mask names only the new source", () => {
    const stored = create(PolicySchema, { regoSource: "package fulcrum.policy\n" });
    const merged = mergeVersioned(
      stored,
      create(PolicySchema, { rules: [rule({})] }),
      new Set(["rules"]),
    );
    expect(merged.regoSource).toBe("");
    expect(merged.rules).toHaveLength(1);
  });
});
