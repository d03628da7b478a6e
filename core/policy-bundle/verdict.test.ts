import { describe, expect, it } from "vitest";
import type { VerdictSets } from "./published-policy.js";
import { meta } from "./test-fixtures.js";
import { verdictResult } from "./verdict.js";

const sets = (s: Partial<VerdictSets>): VerdictSets => ({
  deny: [],
  require_approval: [],
  warn: [],
  audit: [],
  ...s,
});

// Agreement with the governance library on every enforcement and dry-run case:
// functions/src/policy-compiler/verdict-agreement.test.ts.
describe("verdictResult", () => {
  it("orders matches by priority, then deny, require_approval, warn, audit", () => {
    const r = verdictResult(
      sets({
        warn: [{ message: "w", priority: 9 }],
        deny: [{ message: "d" }],
        audit: [{ message: "a" }],
        require_approval: [{ message: "r" }],
      }),
      meta(),
    );
    expect(r.matched_rules.map((m) => [m.reason, m.action])).toEqual([
      ["w", "WARN"],
      ["d", "DENY"],
      ["r", "REQUIRE_APPROVAL"],
      ["a", "AUDIT"],
    ]);
    expect(r.decision).toBe("DENY");
    expect(r.actions.map((a) => a.severity)).toEqual(["LOW", "HIGH", "MEDIUM", "INFO"]);
  });

  it("caps by enforcement and says so", () => {
    const deny = sets({ deny: [{ message: "d" }] });
    expect(verdictResult(deny, meta({ enforcement: "WARN" })).message).toBe(
      "WARN (capped from DENY by WARN enforcement): d",
    );
    expect(verdictResult(deny, meta({ enforcement: "AUDIT" })).message).toBe(
      "audit only, rules would DENY: d",
    );
    const terminate = verdictResult(deny, meta({ enforcement: "TERMINATE" }));
    expect(terminate.actions.map((a) => a.type)).toEqual(["DENY", "TERMINATE"]);
  });

  it("allows in a dry run and keeps the verdict", () => {
    const r = verdictResult(
      sets({ require_approval: [{ message: "r" }] }),
      meta({ dry_run: true }),
    );
    expect([r.decision, r.would_decide, r.message]).toEqual([
      "ALLOW",
      "REQUIRE_APPROVAL",
      "dry run: would REQUIRE_APPROVAL: r",
    ]);
  });

  it("audit items alone leave ALLOW", () => {
    const r = verdictResult(sets({ audit: [{ message: "a" }] }), meta());
    expect([r.decision, r.message]).toEqual(["ALLOW", "ALLOW: a"]);
  });

  it("fails closed on an answer that is not verdict sets", () => {
    expect(() => verdictResult({ deny: "x" } as unknown as VerdictSets, meta())).toThrow(TypeError);
    const item = { deny: [{ rule_id: "r" }] } as unknown as VerdictSets;
    expect(() => verdictResult(item, meta())).toThrow(/deny\[0\]/);
  });
});
