import { describe, expect, it } from "vitest";
import type { PolicyContext } from "../policy/tenant-config.js";
import { notApplicableMessage, policyApplies, scopeMisses } from "./policy-scope.js";
import type { PublishedPolicyScope } from "./published-policy.js";
import { meta } from "./test-fixtures.js";

const NOW = new Date("2026-06-01T00:00:00Z");
const misses = (scope: PublishedPolicyScope, ctx: PolicyContext) =>
  scopeMisses(meta({ scope }), ctx);

describe("policy scope", () => {
  it("does not restrict with empty or missing lists", () => {
    expect(misses({}, {})).toEqual([]);
    expect(
      misses({ workflow_ids: [], phases: [], roles: [], model_ids: [], tool_names: [] }, {}),
    ).toEqual([]);
  });

  it("matches workflows exactly and roles by at least one", () => {
    expect(misses({ workflow_ids: ["w1"] }, { workflow_id: "w1" })).toEqual([]);
    expect(misses({ workflow_ids: ["w1"] }, {})).toEqual(["workflow_ids"]);
    expect(misses({ roles: ["a", "b"] }, { user_roles: ["c", "b"] })).toEqual([]);
    expect(misses({ roles: ["a"] }, { user_roles: ["c"] })).toEqual(["roles"]);
  });

  it("subjects a context without a phase to every phase-scoped policy", () => {
    expect(misses({ phases: ["PRE_TOOL_CALL"] }, {})).toEqual([]);
    expect(misses({ phases: ["PRE_TOOL_CALL"] }, { phase: "PRE_TOOL_CALL" })).toEqual([]);
    expect(misses({ phases: ["PRE_TOOL_CALL"] }, { phase: "POST_TOOL_CALL" })).toEqual(["phases"]);
  });

  it("matches models and tools as globs without delimiters", () => {
    expect(misses({ model_ids: ["gpt-*"] }, { model_id: "gpt-4.1" })).toEqual([]);
    expect(misses({ model_ids: ["gpt-*"] }, {})).toEqual(["model_ids"]);
    expect(misses({ tool_names: ["delete_*"] }, { tool_names: ["read", "delete_db"] })).toEqual([]);
    expect(misses({ tool_names: ["delete_*"] }, { tool_names: ["read"] })).toEqual(["tool_names"]);
  });

  it("lists every missed dimension in the library's order; apply_to_all ignores them", () => {
    const scope = { tool_names: ["x"], workflow_ids: ["w"], roles: ["r"] };
    expect(misses(scope, {})).toEqual(["workflow_ids", "roles", "tool_names"]);
    expect(misses({ ...scope, apply_to_all: true }, {})).toEqual([]);
    expect(notApplicableMessage(meta({ scope }), {}, NOW)).toBe(
      "not applicable: the context is outside the policy scope (workflow_ids, roles, tool_names)",
    );
  });

  it("applies only inside the effective window", () => {
    const window = { effective_at: "2026-05-01T00:00:00Z", expires_at: "2026-07-01T00:00:00Z" };
    expect(policyApplies(meta(window), {}, NOW)).toBe(true);
    expect(policyApplies(meta(window), {}, new Date("2026-04-30T23:59:59Z"))).toBe(false);
    expect(policyApplies(meta(window), {}, new Date("2026-07-01T00:00:00Z"))).toBe(false);
    expect(notApplicableMessage(meta(window), {}, new Date("2026-08-01T00:00:00Z"))).toBe(
      "not applicable: the policy expired at 2026-07-01T00:00:00Z",
    );
  });
});
