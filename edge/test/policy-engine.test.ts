import { describe, expect, it } from "vitest";
import type { TenantConfig } from "../../core/policy/tenant-config.js";
import policyModule from "../../policies/build/governance.wasm";
import fixtureTenants from "../../policies/fixtures/tenants.json";
import { PolicyEngine } from "../src/policy/policy-engine.js";

const test = (fixtureTenants as unknown as Record<string, TenantConfig>).test as TenantConfig;
const input = { policy_ids: ["test"], context: { tool_names: ["shell_x"] } };

describe("PolicyEngine", () => {
  it("keeps at most maxInstances tenants, dropping the least recently used", () => {
    const engine = new PolicyEngine(policyModule, 2);
    for (const tenant of ["a", "b", "a", "c"]) {
      expect(engine.evaluate(tenant, test, input).output.decision).toBe("DENY");
    }
    expect(engine.size).toBe(2);
  });

  it("rebuilds a tenant's instance when its configuration changes", () => {
    const engine = new PolicyEngine(policyModule);
    expect(engine.evaluate("t", test, input).output.decision).toBe("DENY");
    const relaxed = structuredClone(test);
    (relaxed.policies.test as { enforcement: string }).enforcement = "AUDIT";
    expect(engine.evaluate("t", relaxed, input).output.decision).toBe("ALLOW");
  });

  it("reports the bundle ready", () => {
    expect(new PolicyEngine(policyModule).isReady()).toBe(true);
  });
});

describe("PolicyEngine with an invalid configuration", () => {
  it("fails closed with FailedPrecondition naming the problem, not a retryable Internal", () => {
    const engine = new PolicyEngine(policyModule);
    const broken = structuredClone(test);
    (broken.policies.test as { status: string }).status = "active";
    expect(() => engine.evaluate("t", broken, input)).toThrow(
      expect.objectContaining({ kind: "FailedPrecondition", retry: false }),
    );
    expect(() => engine.evaluate("t", broken, input)).toThrow(/status/);
  });
});
