import { describe, expect, it } from "vitest";
import fixtureTenants from "../../policies/fixtures/tenants.json";
import testTenants from "../../policies/fulcrum/governance/testdata/raw.json";
import {
  analysePattern,
  compareCodePoints,
  InvalidTenantConfigError,
  type PreparedContentRule,
  type PreparedToolRule,
  prepareGlobs,
  prepareTenantData,
} from "./prepare-tenant-data.js";
import type { TenantConfig } from "./tenant-config.js";

const fixtures = fixtureTenants as unknown as Record<string, TenantConfig>;

describe("prepareTenantData", () => {
  it("orders ACTIVE policies by priority desc, then id, and keeps every policy", () => {
    const data = prepareTenantData(fixtures.demo as TenantConfig);
    expect(data.tenant_id).toBe("demo");
    expect(data.active_policy_ids).toEqual(["pol_safe_tools", "pol_models", "pol_pii"]);
    expect(Object.keys(data.policies).sort()).toEqual([
      "pol_draft_rbac",
      "pol_models",
      "pol_pii",
      "pol_safe_tools",
    ]);
    expect(data.policies.pol_draft_rbac?.dry_run).toBe(true);
  });

  it("resolves rule defaults, drops rules that can never match, sorts by priority", () => {
    const config = {
      tenant_id: "t",
      policies: {
        p: {
          name: "P",
          version: "v1",
          status: "ACTIVE",
          enforcement: "WARN",
          rules: [
            { type: "TOOL_RESTRICTION", denied_tools: ["a"] },
            { id: "hi", type: "APPROVAL_REQUIRED", priority: 9, tools: ["b*"], severity: "LOW" },
            { id: "off", type: "TOOL_RESTRICTION", enabled: false, denied_tools: ["*"] },
            { id: "rate", type: "RATE_LIMIT", requests_per_minute: 60 },
            { id: "empty", type: "APPROVAL_REQUIRED", tools: [] },
            { id: "audit", type: "TOOL_RESTRICTION", action: "AUDIT", denied_tools: ["c"] },
            { id: "default", type: "TOOL_RESTRICTION", action: "", denied_tools: ["d"] },
          ],
        },
      },
    } satisfies TenantConfig;
    const p = prepareTenantData(config).policies.p;
    expect(p?.enforcement).toBe("WARN");
    expect(p?.rules.map((r) => r.k)).toEqual([0, 1, 2, 3]);
    expect(p?.rule_info.map((r) => [r.rule_id, r.action, r.severity])).toEqual([
      ["hi", "REQUIRE_APPROVAL", "LOW"],
      ["rules[0]", "DENY", "HIGH"],
      ["audit", "AUDIT", "INFO"],
      ["default", "DENY", "HIGH"],
    ]);
    expect((p?.rules[1] as PreparedToolRule | undefined)?.denied.patterns).toEqual(["a"]);
    expect(p?.rules.map((r) => r.action)).toEqual(["REQUIRE_APPROVAL", "DENY", "AUDIT", "DENY"]);
  });

  it("groups phase-restricted rules by phase", () => {
    const config = {
      tenant_id: "",
      policies: {
        p: {
          name: "P",
          version: "v1",
          status: "ACTIVE",
          enforcement: "BLOCK",
          scope: { phases: [], roles: ["dev"] },
          rules: [
            {
              id: "post",
              type: "TOOL_RESTRICTION",
              phases: ["POST_TOOL_CALL"],
              denied_tools: ["x"],
            },
            { id: "any", type: "TOOL_RESTRICTION", denied_tools: ["y"] },
          ],
        },
      },
    } as unknown as TenantConfig;
    const p = prepareTenantData(config).policies.p;
    expect(p?.rules.map((r) => p.rule_info[r.k]?.rule_id)).toEqual(["any"]);
    // "" (unspecified phase) is subject to every phase restriction: every rule.
    expect(Object.keys(p?.by_phase ?? {})).toEqual(["", "POST_TOOL_CALL"]);
    expect(p?.by_phase[""]?.map((r) => p.rule_info[r.k]?.rule_id)).toEqual(["post", "any"]);
    expect(p?.by_phase.POST_TOOL_CALL?.map((r) => p.rule_info[r.k]?.rule_id)).toEqual([
      "post",
      "any",
    ]);
    expect(p?.scope).toEqual({ roles: { dev: true } });
  });

  it("gives an unspecified phase every rule, in match order", () => {
    const rule = (id: string, priority: number, phases?: string[]) => ({
      id,
      type: "TOOL_RESTRICTION",
      priority,
      ...(phases ? { phases } : {}),
      denied_tools: ["x"],
    });
    const config = {
      tenant_id: "",
      policies: {
        p: {
          name: "P",
          version: "v1",
          status: "ACTIVE",
          enforcement: "BLOCK",
          rules: [
            rule("pre", 5, ["PRE_TOOL_CALL"]),
            rule("any", 1),
            rule("post", 10, ["POST_TOOL_CALL"]),
            rule("both", 1, ["PRE_TOOL_CALL", "POST_TOOL_CALL"]),
          ],
        },
        flat: {
          name: "F",
          version: "v1",
          status: "ACTIVE",
          enforcement: "BLOCK",
          rules: [rule("a", 0)],
        },
      },
    } as unknown as TenantConfig;
    const data = prepareTenantData(config);
    const p = data.policies.p;
    const ids = (phase: string) => p?.by_phase[phase]?.map((r) => p.rule_info[r.k]?.rule_id);
    expect(ids("")).toEqual(["post", "pre", "any", "both"]);
    expect(ids("PRE_TOOL_CALL")).toEqual(["pre", "any", "both"]);
    expect(ids("POST_TOOL_CALL")).toEqual(["post", "any", "both"]);
    expect(p?.rules.map((r) => p.rule_info[r.k]?.rule_id)).toEqual(["any"]);
    // No phase-restricted rule: `rules` already holds every rule, no "" entry.
    expect(data.policies.flat?.by_phase).toEqual({});
  });

  it("pre-renders content scans field by field", () => {
    const rule = prepareTenantData(fixtures.demo as TenantConfig).policies.pol_pii
      ?.rules[0] as PreparedContentRule;
    expect(rule.scans.map((s) => [s.field, s.regex, s.hit.condition])).toEqual([
      ["input_text", "(?i)(?i)api[_-]?key", "input_text matches /(?i)api[_-]?key/i"],
      [
        "input_text",
        "(?i)\\b\\d{4}[ -]?\\d{4}[ -]?\\d{4}[ -]?\\d{4}\\b",
        "input_text matches /\\b\\d{4}[ -]?\\d{4}[ -]?\\d{4}[ -]?\\d{4}\\b/i",
      ],
    ]);
    expect(rule.scans[0]?.exact).toEqual(["api-key", "api_key", "apikey"]);
    expect(rule.scans[1]?.exact).toBeUndefined();
    expect(rule.scans[1]?.need_char).toEqual([["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"]]);
  });

  it("is deterministic", () => {
    expect(prepareTenantData({ tenant_id: "", policies: {} })).toEqual({
      tenant_id: "",
      active_policy_ids: [],
      policies: {},
    });
    const demo = fixtures.demo as TenantConfig;
    expect(JSON.stringify(prepareTenantData(demo))).toBe(JSON.stringify(prepareTenantData(demo)));
  });

  it("refuses an invalid configuration instead of preparing it leniently", () => {
    const config = {
      tenant_id: "t",
      policies: {
        p: {
          name: "P",
          version: "v1",
          status: "ACTIVE",
          enforcement: "NOPE",
          rules: [{ type: "TOOL_RESTRICTION", denied_tools: ["a", 5] }, null],
        },
      },
    } as unknown as TenantConfig;
    let error: unknown;
    try {
      prepareTenantData(config);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidTenantConfigError);
    expect((error as InvalidTenantConfigError).problems.map((p) => p.path)).toEqual([
      "policies.p.enforcement",
      "policies.p.rules[0].denied_tools",
      "policies.p.rules[1]",
    ]);
    expect(() => prepareTenantData({} as TenantConfig)).toThrow(/policies: is required/);
  });
});

describe("prepareGlobs", () => {
  it("splits globs into exact / prefix / suffix / infix / general", () => {
    expect(
      prepareGlobs(["exec", "shell_*", "*", "*_admin", "*sudo*", "**", "o[13]", "exec"]),
    ).toEqual({
      patterns: ["exec", "shell_*", "*", "*_admin", "*sudo*", "**", "o[13]", "exec"],
      exact: { exec: 0 },
      prefix: [
        ["shell_", 1],
        ["", 2],
      ],
      suffix: [["_admin", 3]],
      infix: [
        ["sudo", 4],
        ["", 5],
      ],
      glob: [["o[13]", 6]],
    });
  });
});

describe("analysePattern", () => {
  it("decides finite literal languages without a regex", () => {
    expect(analysePattern("secret")).toEqual({
      fold: false,
      exact: ["secret"],
      need: [],
      need_char: [],
    });
    expect(analysePattern("(?i)API(_|-)?Key").exact).toEqual(["api-key", "api_key", "apikey"]);
    expect(analysePattern("a|b?").exact).toEqual([""]);
    expect(analysePattern("colou?r\\.").exact).toEqual(["color.", "colour."]);
  });

  it("derives necessary literals otherwise", () => {
    expect(analysePattern("(?i)password\\s*[:=]")).toEqual({
      fold: true,
      need: ["password"],
      need_char: [],
    });
    expect(analysePattern("\\bssn\\b")).toMatchObject({ need: ["ssn"] });
    expect(analysePattern("\\d{3}-\\d{2}")).toMatchObject({ need: ["-"] });
    expect(analysePattern("\\d+")).toMatchObject({ need: [], need_char: [[..."0123456789"]] });
  });

  it("gives up on syntax it does not model (and on invalid patterns)", () => {
    for (const p of ["bad(", "a**", "\\x41", "(?i:x)", "[^a]b", "\\pL", "a{,2}", "\\_", "é(?i)"]) {
      expect(analysePattern(p)).toEqual({ fold: false, need: [], need_char: [] });
    }
    // Case folding is only modelled for ASCII literals.
    expect(analysePattern("(?i)café")).toEqual({ fold: true, need: [], need_char: [] });
    expect(analysePattern("café")).toEqual({
      fold: false,
      exact: ["café"],
      need: [],
      need_char: [],
    });
  });
});

describe("compareCodePoints", () => {
  it("orders by code point like UTF-8 byte order", () => {
    expect(["b", "a", "\u{1F600}", "\uFF61"].sort(compareCodePoints)).toEqual([
      "a",
      "b",
      "\uFF61",
      "\u{1F600}",
    ]);
  });
});

describe("opa test data", () => {
  // policies/fulcrum/governance/testdata/prepared.json is what the opa tests
  // evaluate against: prepareTenantData over raw.json. After changing either,
  // regenerate it with `npx vitest run --project unit -u core/policy/prepare-tenant-data.test.ts`.
  it("prepared.json is prepareTenantData(raw.json)", async () => {
    const raw = (testTenants as unknown as { raw: Record<string, TenantConfig> }).raw;
    const prepared = {
      prepared: Object.fromEntries(
        Object.entries(raw).map(([name, config]) => [name, prepareTenantData(config)]),
      ),
    };
    await expect(`${JSON.stringify(prepared, null, 1)}\n`).toMatchFileSnapshot(
      "../../policies/fulcrum/governance/testdata/prepared.json",
    );
  });
});
