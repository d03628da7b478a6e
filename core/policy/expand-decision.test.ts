import { describe, expect, it } from "vitest";
import { expandDecision } from "./expand-decision.js";
import { prepareTenantData } from "./prepare-tenant-data.js";
import type { TenantConfig } from "./tenant-config.js";

const deny = { id: "d", name: "No danger", type: "TOOL_RESTRICTION", denied_tools: ["danger"] };
const policy = (enforcement: string, extra: object = {}) => ({
  name: `P ${enforcement}`,
  version: "v1",
  status: "ACTIVE",
  enforcement,
  ...extra,
  rules: [
    deny,
    { id: "ask", type: "APPROVAL_REQUIRED", priority: 5, tools: ["*"], severity: "LOW" },
    { id: "own", type: "CONTENT_FILTER", patterns: ["x"], message: "no x", action: "WARN" },
  ],
});
const prepared = prepareTenantData({
  tenant_id: "t",
  policies: {
    block: policy("BLOCK"),
    warn: policy("WARN"),
    audit: policy("AUDIT"),
    term: policy("TERMINATE"),
    dry: policy("BLOCK", { dry_run: true }),
  },
} as unknown as TenantConfig);

// k follows match order: ask (priority 5) = 0, d = 1, own = 2.
const cond = "tool_names[0] = danger matches danger";
const hitDeny: [number, string[], string] = [1, [cond], "tool 'danger' is denied"];

describe("expandDecision", () => {
  it("renders clean and out-of-scope results, with the wasm's key order", () => {
    const out = expandDecision(prepared, {
      results: [{ id: "block" }, { id: "warn", misses: ["phases", "roles"] }],
    });
    expect(JSON.stringify(out)).toBe(
      JSON.stringify({
        would_decide: "ALLOW",
        results: [
          {
            policy_version: "v1",
            would_decide: "ALLOW",
            actions: [],
            dry_run: false,
            decision: "ALLOW",
            matched_rules: [],
            message: "no rule matched",
            policy_name: "P BLOCK",
            policy_id: "block",
          },
          {
            policy_version: "v1",
            would_decide: "ALLOW",
            actions: [],
            dry_run: false,
            decision: "ALLOW",
            matched_rules: [],
            message: "not applicable: the context is outside the policy scope (phases, roles)",
            policy_name: "P WARN",
            policy_id: "warn",
          },
        ],
        actions: [],
        decision: "ALLOW",
        matched_rules: [],
        reasons: [],
      }),
    );
  });

  it("names matched rules from rule_info and flattens them with policy ids", () => {
    const out = expandDecision(prepared, {
      results: [
        { id: "block", decision: "DENY", matched: [hitDeny, [2, ["input_text matches /x/"]]] },
      ],
    });
    expect(JSON.stringify(out.matched_rules[0])).toBe(
      JSON.stringify({
        matched_conditions: [cond],
        action: "DENY",
        reason: "tool 'danger' is denied",
        rule_name: "No danger",
        policy_id: "block",
        priority: 0,
        rule_id: "d",
        rule_type: "TOOL_RESTRICTION",
      }),
    );
    // A rule's own message is its reason: the Rego sends none.
    expect(out.results[0]?.matched_rules.map((m) => m.reason)).toEqual([
      "tool 'danger' is denied",
      "no x",
    ]);
    expect(out.results[0]?.message).toBe("DENY: tool 'danger' is denied; no x");
    expect(out.reasons).toEqual([
      "tool 'danger' is denied (rule d of policy block)",
      "no x (rule own of policy block)",
    ]);
    expect(out.actions).toEqual([
      { severity: "HIGH", terminal: true, message: "tool 'danger' is denied", type: "DENY" },
      { severity: "LOW", terminal: false, message: "no x", type: "WARN" },
    ]);
    expect([out.decision, out.would_decide]).toEqual(["DENY", "DENY"]);
  });

  it("applies enforcement to actions and messages", () => {
    const one = (id: string, decision?: "WARN" | "DENY") =>
      expandDecision(prepared, { results: [{ id, decision, matched: [hitDeny] }] }).results[0];
    const warn = one("warn", "WARN");
    expect(warn?.message).toBe(
      "WARN (capped from DENY by WARN enforcement): tool 'danger' is denied",
    );
    expect(warn?.actions.map((a) => [a.type, a.severity, a.terminal])).toEqual([
      ["WARN", "HIGH", false],
    ]);
    const audit = one("audit");
    expect(audit?.message).toBe("audit only, rules would DENY: tool 'danger' is denied");
    expect(audit?.actions.map((a) => [a.type, a.severity])).toEqual([["AUDIT", "INFO"]]);
    const term = one("term", "DENY");
    expect(term?.actions.map((a) => [a.type, a.severity, a.terminal])).toEqual([
      ["DENY", "HIGH", true],
      ["TERMINATE", "CRITICAL", true],
    ]);
    const approval = expandDecision(prepared, {
      results: [{ id: "block", decision: "REQUIRE_APPROVAL", matched: [[0, ["c"], "r"]] }],
    }).results[0];
    expect(approval?.actions.map((a) => [a.type, a.severity])).toEqual([
      ["REQUIRE_APPROVAL", "LOW"],
    ]);
  });

  it("downgrades dry runs (policy or request) to AUDIT and prefixes reasons", () => {
    const policyDry = expandDecision(prepared, {
      results: [{ id: "dry", would_decide: "DENY", matched: [hitDeny] }],
    });
    expect(policyDry.results[0]?.dry_run).toBe(true);
    expect(policyDry.results[0]?.message).toBe("dry run: would DENY: tool 'danger' is denied");
    expect(policyDry.actions).toEqual([
      {
        severity: "INFO",
        terminal: false,
        message: "dry run: would DENY: tool 'danger' is denied",
        type: "AUDIT",
      },
    ]);
    expect(policyDry.reasons).toEqual(["dry run: tool 'danger' is denied (rule d of policy dry)"]);
    expect([policyDry.decision, policyDry.would_decide]).toEqual(["ALLOW", "DENY"]);

    // No TERMINATE action in a dry run; the action message keeps the capped type.
    const requestDry = expandDecision(prepared, {
      dry_run: true,
      results: [
        { id: "term", would_decide: "DENY", matched: [hitDeny] },
        { id: "warn", would_decide: "WARN", matched: [hitDeny] },
        { id: "block" },
      ],
    });
    expect(requestDry.actions.map((a) => a.message)).toEqual([
      "dry run: would DENY: tool 'danger' is denied",
      "dry run: would WARN: tool 'danger' is denied",
    ]);
    expect(requestDry.results.map((r) => r.dry_run)).toEqual([true, true, true]);
  });

  it("fails closed on a tenant mismatch", () => {
    const reason = "context tenant 'x' does not match the loaded tenant configuration 't'";
    expect(expandDecision(prepared, { tenant: "x" })).toEqual({
      would_decide: "DENY",
      results: [],
      actions: [{ severity: "CRITICAL", terminal: true, message: reason, type: "DENY" }],
      decision: "DENY",
      matched_rules: [],
      reasons: [reason],
    });
  });

  it("rejects output that does not fit the prepared data", () => {
    expect(() => expandDecision(prepared, { results: [{ id: "nope" }] })).toThrow(TypeError);
    expect(() =>
      expandDecision(prepared, { results: [{ id: "block", matched: [[9, []]] }] }),
    ).toThrow(TypeError);
    expect(() => expandDecision(prepared, {} as never)).toThrow(TypeError);
    expect(() => expandDecision(prepared, undefined as never)).toThrow(TypeError);
  });

  it("never reads a missing, unknown or inconsistent verdict as ALLOW", () => {
    const raw = (r: object) => () =>
      expandDecision(prepared, { results: [{ id: "block", ...r }] as never });
    // Matched DENY rule: the decision must be there.
    expect(raw({ matched: [hitDeny] })).toThrow(/does not follow from its matched rules \(DENY\)/);
    expect(raw({ decision: "DENIED", matched: [hitDeny] })).toThrow(/unknown decision "DENIED"/);
    expect(raw({ decision: "deny", matched: [hitDeny] })).toThrow(TypeError);
    expect(raw({ decision: "WARN", matched: [hitDeny] })).toThrow(TypeError);
    expect(raw({ decision: "DENY", would_decide: "ALLOW", matched: [hitDeny] })).toThrow(TypeError);
    expect(raw({ decision: "DENY" })).toThrow(/a decision without matched rules/);
    expect(raw({ would_decide: "DENY", misses: ["roles"] })).toThrow(TypeError);
    // A dry run's decision is ALLOW: a DENY there does not fit either.
    expect(() =>
      expandDecision(prepared, {
        results: [{ id: "dry", decision: "DENY", would_decide: "DENY", matched: [hitDeny] }],
      }),
    ).toThrow(TypeError);
    // Where the Rego omits it by design, a missing decision is ALLOW.
    expect(raw({ matched: [[2, ["c"]]], decision: "WARN" })().decision).toBe("WARN");
    expect(
      expandDecision(prepared, { results: [{ id: "audit", matched: [hitDeny] }] }).decision,
    ).toBe("ALLOW");
  });
});
