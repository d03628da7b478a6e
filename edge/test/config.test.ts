import { describe, expect, it } from "vitest";
import { BadEnvironmentError, parseEdgeConfig } from "../src/config.js";

describe("parseEdgeConfig", () => {
  it("serves the bundled fixtures when TENANT_CONFIGS is unset", () => {
    const config = parseEdgeConfig({});
    expect(config.environment).toBe("development");
    expect(config.tenantConfigOrigin).toBe("fixtures");
    expect(Object.keys(config.tenantConfigs).sort()).toEqual(["demo", "test"]);
  });

  it("takes TENANT_CONFIGS as a JSON string or an object", () => {
    const json = '{"t1": {"tenant_id": "t1", "policies": {}}}';
    expect(parseEdgeConfig({ TENANT_CONFIGS: json }).tenantConfigs).toHaveProperty("t1");
    const fromObject = parseEdgeConfig({ TENANT_CONFIGS: { t2: { policies: {} } } });
    expect(fromObject.tenantConfigOrigin).toBe("TENANT_CONFIGS");
    expect(fromObject.tenantConfigs).toHaveProperty("t2");
  });

  it("refuses malformed configuration with a message naming the variable", () => {
    expect(() => parseEdgeConfig({ TENANT_CONFIGS: "{nope" })).toThrow(BadEnvironmentError);
    expect(() => parseEdgeConfig({ TENANT_CONFIGS: "[]" })).toThrow(/TENANT_CONFIGS must be/);
    expect(() => parseEdgeConfig({ TENANT_CONFIGS: '{"t1": {"policies": []}}' })).toThrow(
      /TENANT_CONFIGS\["t1"\]\.policies: must be an object/,
    );
  });

  it("validates every tenant's policies strictly and lists the first problems", () => {
    const rule = { id: "r1", type: "tool_restriction", denied_tools: ["shell_*"] };
    const policy = { name: "P", version: "v1", status: "ACTIVE", enforcement: "BLOCK" };
    const env = {
      TENANT_CONFIGS: {
        t1: { tenant_id: "t1", policies: { p1: { ...policy, rules: [rule] } } },
      },
    };
    expect(() => parseEdgeConfig(env)).toThrow(BadEnvironmentError);
    expect(() => parseEdgeConfig(env)).toThrow(
      'TENANT_CONFIGS["t1"].policies.p1.rules[0].type: unknown rule type "tool_restriction"',
    );
    const many = {
      t2: {
        tenant_id: "other",
        policies: {
          p1: { ...policy, status: "active", rules: [{ type: "X" }, { type: "Y" }] },
          p2: { ...policy, rules: "none", extra: 1, enforcement: "block", dry_run: "no" },
        },
      },
    };
    let message = "";
    try {
      parseEdgeConfig({ TENANT_CONFIGS: JSON.stringify(many) });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(
      /^invalid tenant configuration: TENANT_CONFIGS\["t2"\]\.policies\.p1\.status: /,
    );
    expect(message).toMatch(/\(and 3 more\)$/);
    expect(() =>
      parseEdgeConfig({ TENANT_CONFIGS: { t3: { tenant_id: "t4", policies: {} } } }),
    ).toThrow('TENANT_CONFIGS["t3"].tenant_id: "t4" is not the tenant\'s key');
  });
});
