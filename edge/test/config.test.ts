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
      /TENANT_CONFIGS\["t1"\]\.policies/,
    );
  });
});
