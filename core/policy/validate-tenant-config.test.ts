import { describe, expect, it } from "vitest";
import fixtureTenants from "../../policies/fixtures/tenants.json";
import testTenants from "../../policies/fulcrum/governance/testdata/raw.json";
import { generateCases } from "../../test/harness/policy-cases.js";
import { globProblem, re2Problem } from "./pattern-syntax.js";
import { InvalidTenantConfigError, prepareTenantData } from "./prepare-tenant-data.js";
import { type ConfigProblem, validateTenantConfig } from "./validate-tenant-config.js";

/** A tenant with one ACTIVE BLOCK policy `p1` holding `rule`, meant to DENY tool shell_exec. */
const withRule = (rule: Record<string, unknown>, policy: Record<string, unknown> = {}) => ({
  tenant_id: "t1",
  policies: {
    p1: {
      name: "No shell",
      version: "v1",
      status: "ACTIVE",
      enforcement: "BLOCK",
      rules: [rule],
      ...policy,
    },
  },
});

const denyShell = { id: "r1", type: "TOOL_RESTRICTION", denied_tools: ["shell_*"] };

const paths = (problems: ConfigProblem[]) => problems.map((p) => p.path);

describe("validateTenantConfig", () => {
  it("accepts the fixtures, the opa test data and the differential generator's configs", () => {
    for (const config of Object.values(fixtureTenants)) {
      expect(validateTenantConfig(config)).toEqual([]);
    }
    for (const config of Object.values(testTenants.raw)) {
      expect(validateTenantConfig(config)).toEqual([]);
    }
    const { configs } = generateCases(20261124, 200, 0);
    for (const [id, config] of Object.entries(configs)) {
      expect([id, validateTenantConfig(config)]).toEqual([id, []]);
    }
  });

  it("accepts every documented field of every family", () => {
    const config = {
      tenant_id: "",
      policies: {
        all: {
          name: "All",
          version: "v1",
          status: "DRAFT",
          enforcement: "TERMINATE",
          dry_run: true,
          priority: -5,
          scope: {
            workflow_ids: ["wf"],
            phases: ["PRE_EXECUTION", "POST_EXECUTION"],
            roles: ["dev"],
            model_ids: ["gpt-{4o,4.1}*"],
            tool_names: ["[a-c]*", "[!x]y", "o[13]", "\\[lit"],
          },
          rules: [
            {
              id: "m",
              name: "M",
              type: "MODEL_RESTRICTION",
              enabled: false,
              priority: 1.5,
              phases: ["PRE_LLM_CALL"],
              action: "WARN",
              message: "no",
              severity: "CRITICAL",
              allowed_models: ["gpt-*"],
              denied_models: [],
            },
            { type: "TOOL_RESTRICTION", allowed_tools: ["read_*"], denied_tools: ["x"] },
            { type: "APPROVAL_REQUIRED", tools: ["delete_*"], action: "REQUIRE_APPROVAL" },
            {
              type: "CONTENT_FILTER",
              patterns: ["(?i)api[_-]?key", "\\b\\d{4}\\b", "(?P<n>x)"],
              case_insensitive: true,
              fields: ["input_text", "output_text"],
            },
            { type: "COST_CONTROL", max_cost_per_call_usd: 0, action: "AUDIT" },
            {
              type: "RBAC",
              allowed_roles: ["ops"],
              denied_roles: ["intern"],
              tools: ["*"],
              models: ["gpt-*"],
            },
            { type: "RATE_LIMIT", requests_per_minute: 10, action: "" },
          ],
        },
      },
    };
    expect(validateTenantConfig(config)).toEqual([]);
  });

  // Each of these turned a rule meant to DENY shell_exec into an ALLOW.
  it.each([
    [
      "a lower-case rule type",
      withRule({ ...denyShell, type: "tool_restriction" }),
      "policies.p1.rules[0].type",
      /^unknown rule type "tool_restriction"/,
    ],
    [
      "a string instead of a list",
      withRule({ ...denyShell, denied_tools: "shell_*" }),
      "policies.p1.rules[0].denied_tools",
      /^must be a list of strings$/,
    ],
    [
      "a misspelled key",
      withRule({ id: "r1", type: "TOOL_RESTRICTION", denied_tool: ["shell_*"] }),
      "policies.p1.rules[0].denied_tool",
      /^unknown TOOL_RESTRICTION rule field$/,
    ],
    [
      "a lower-case status",
      withRule(denyShell, { status: "active" }),
      "policies.p1.status",
      /^unknown status "active"/,
    ],
    [
      "a string cost limit",
      withRule({ id: "r1", type: "COST_CONTROL", max_cost_per_call_usd: "0.5" }),
      "policies.p1.rules[0].max_cost_per_call_usd",
      /^must be a finite number, not "0.5"$/,
    ],
    [
      "a pattern RE2 cannot compile",
      withRule({ id: "r1", type: "CONTENT_FILTER", patterns: ["shell(?=_exec)"] }),
      "policies.p1.rules[0].patterns[0]",
      /^invalid RE2 pattern "shell\(\?=_exec\)": .*Perl syntax/,
    ],
    [
      "an unknown action",
      withRule({ ...denyShell, action: "DENIED" }),
      "policies.p1.rules[0].action",
      /^unknown action "DENIED"/,
    ],
  ])("reports %s", (_, config, path, message) => {
    const problems = validateTenantConfig(config);
    expect(paths(problems)).toEqual([path]);
    expect(problems[0]?.message).toMatch(message);
    expect(() => prepareTenantData(config as never)).toThrow(InvalidTenantConfigError);
  });

  it("reports wrong shapes, types, enums and required fields", () => {
    expect(validateTenantConfig(null)).toEqual([
      { path: "", message: "the tenant configuration must be an object" },
    ]);
    expect(paths(validateTenantConfig({ tenant: "t1", policies: [] }))).toEqual([
      "tenant",
      "policies",
    ]);
    expect(paths(validateTenantConfig({ tenant_id: 1, policies: { "": "x", p: {} } }))).toEqual([
      "tenant_id",
      'policies[""]',
      'policies[""]',
      "policies.p.name",
      "policies.p.version",
      "policies.p.status",
      "policies.p.enforcement",
      "policies.p.rules",
    ]);
    const problems = validateTenantConfig(
      withRule(
        {
          id: "",
          type: "CONTENT_FILTER",
          enabled: "yes",
          priority: Number.NaN,
          phases: ["pre_tool_call"],
          severity: "high",
          message: 3,
          name: null,
          patterns: ["ok", 5],
          fields: ["input_text", "prompt"],
          case_insensitive: 1,
        },
        {
          enforcement: "block",
          dry_run: "false",
          priority: "1",
          version: 3,
          name: ["n"],
          scope: { tool_name: ["x"], phases: "PRE_TOOL_CALL", model_ids: ["[a-"] },
          owner: "me",
        },
      ),
    );
    expect(problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
      "policies.p1.owner: unknown policy field",
      'policies.p1.name: must be a string, not ["n"]',
      "policies.p1.version: must be a string, not 3",
      'policies.p1.enforcement: unknown enforcement "block" (one of AUDIT, WARN, BLOCK, TERMINATE)',
      'policies.p1.dry_run: must be true or false, not "false"',
      'policies.p1.priority: must be a finite number, not "1"',
      "policies.p1.scope.tool_name: unknown scope field",
      "policies.p1.scope.phases: must be a list of strings",
      'policies.p1.scope.model_ids[0]: invalid glob "[a-": unexpected end of a character class',
      "policies.p1.rules[0].id: must not be empty",
      "policies.p1.rules[0].name: must be a string, not null",
      'policies.p1.rules[0].enabled: must be true or false, not "yes"',
      "policies.p1.rules[0].priority: must be a finite number, not null",
      'policies.p1.rules[0].phases[0]: unknown phase "pre_tool_call" (one of PRE_EXECUTION, PRE_LLM_CALL, POST_LLM_CALL, PRE_TOOL_CALL, POST_TOOL_CALL, POST_EXECUTION)',
      "policies.p1.rules[0].message: must be a string, not 3",
      'policies.p1.rules[0].severity: unknown severity "high" (one of INFO, LOW, MEDIUM, HIGH, CRITICAL)',
      "policies.p1.rules[0].patterns: must be a list of strings",
      "policies.p1.rules[0].case_insensitive: must be true or false, not 1",
      'policies.p1.rules[0].fields[1]: unknown field "prompt" (one of input_text, output_text)',
    ]);
  });

  it("requires the rule type and the cost limit, and a non-negative finite cost", () => {
    expect(paths(validateTenantConfig(withRule({ id: "r", denied_tools: ["x"] })))).toEqual([
      "policies.p1.rules[0].type",
    ]);
    expect(validateTenantConfig(withRule({ type: "COST_CONTROL" }))).toEqual([
      { path: "policies.p1.rules[0].max_cost_per_call_usd", message: "is required" },
    ]);
    expect(
      validateTenantConfig(withRule({ type: "COST_CONTROL", max_cost_per_call_usd: -1 })),
    ).toEqual([
      { path: "policies.p1.rules[0].max_cost_per_call_usd", message: "must be >= 0, not -1" },
    ]);
    expect(paths(validateTenantConfig(withRule({ type: "CUSTOM", anything: 1 })))).toEqual([
      "policies.p1.rules[0].type",
    ]);
    expect(paths(validateTenantConfig(withRule({ ...denyShell, denied_tools: [""] })))).toEqual([
      "policies.p1.rules[0].denied_tools[0]",
    ]);
  });

  it("checks RATE_LIMIT rules' edge parameters strictly, and their common fields", () => {
    const rate = { type: "RATE_LIMIT", requests_per_minute: 5 };
    expect(validateTenantConfig(withRule(rate))).toEqual([]);
    expect(
      validateTenantConfig(
        withRule({
          type: "RATE_LIMIT",
          tokens_per_minute: 1000,
          per: "tool",
          tools: ["search_*"],
          algorithm: "token_bucket",
          burst: 2000,
          failure_mode: "FAIL_OPEN",
        }),
      ),
    ).toEqual([]);
    expect(paths(validateTenantConfig(withRule({ ...rate, action: "deny" })))).toEqual([
      "policies.p1.rules[0].action",
    ]);
    // A misspelled limit is an error, not an absent one; so is a rule limiting nothing.
    expect(validateTenantConfig(withRule({ type: "RATE_LIMIT", per_minute: 5 }))).toEqual([
      { path: "policies.p1.rules[0].per_minute", message: "unknown RATE_LIMIT rule field" },
      {
        path: "policies.p1.rules[0]",
        message:
          "a RATE_LIMIT rule needs at least one of requests_per_minute, requests_per_hour, tokens_per_minute",
      },
    ]);
    expect(
      paths(
        validateTenantConfig(
          withRule({
            type: "RATE_LIMIT",
            requests_per_minute: 0,
            requests_per_hour: 1.5,
            tokens_per_minute: "9",
            per: "user",
            algorithm: "leaky",
            failure_mode: "fail_open",
            burst: 3,
            tools: ["x"],
          }),
        ),
      ),
    ).toEqual([
      "policies.p1.rules[0].requests_per_minute",
      "policies.p1.rules[0].requests_per_hour",
      "policies.p1.rules[0].tokens_per_minute",
      "policies.p1.rules[0].per",
      "policies.p1.rules[0].algorithm",
      "policies.p1.rules[0].failure_mode",
      "policies.p1.rules[0].burst",
      "policies.p1.rules[0].tools",
    ]);
    expect(
      paths(
        validateTenantConfig(
          withRule({ ...rate, tokens_per_minute: 9, algorithm: "token_bucket", burst: 10 }),
        ),
      ),
    ).toEqual(["policies.p1.rules[0].burst"]);
    expect(paths(validateTenantConfig(withRule({ ...rate, per: "tool", tools: [] })))).toEqual([
      "policies.p1.rules[0].tools",
    ]);
  });

  it("names keys that are not identifiers in brackets", () => {
    expect(
      paths(
        validateTenantConfig({
          policies: { "pol-1": { ...withRule(denyShell).policies.p1, status: "x" } },
        }),
      ),
    ).toEqual(['policies["pol-1"].status']);
  });
});

describe("re2Problem", () => {
  it("accepts RE2 syntax and rejects what RE2 cannot compile", () => {
    for (const ok of ["(?i)secret", "\\d{3}-\\d{2}", "[[:alpha:]]+", "\\pL", "(?s:a.b)", "a{2,}"]) {
      expect([ok, re2Problem(ok)]).toEqual([ok, null]);
    }
    for (const bad of ["(?=x)", "(?<!x)y", "bad(", "a**", "\\1", "a{1001}", "\\Z", "[z-a]"]) {
      expect([bad, re2Problem(bad)]).toEqual([bad, expect.any(String)]);
    }
  });
});

describe("globProblem", () => {
  // Checked against `opa eval 'glob.match(p, null, "ab")'` (OPA v1.19.0).
  it("accepts what glob.match parses", () => {
    for (const ok of [
      "*",
      "a?c",
      "{a,b}",
      "{a,{b,c}}",
      "a}",
      "a,b",
      "a\\",
      "[abc]",
      "[!abc]",
      "[a-c]x",
      "[!a-c]",
      "[ab-c]",
      "[!!]",
      "[\\]]",
      "[{]",
    ]) {
      expect([ok, globProblem(ok)]).toEqual([ok, null]);
    }
  });

  it("rejects what glob.match fails on", () => {
    for (const bad of [
      "[",
      "[]",
      "[!]",
      "[]]",
      "[a",
      "[a-]",
      "[a-z",
      "*[",
      "[a-zA-Z]",
      "[\\",
      "{[}",
      "[z-a]",
    ]) {
      expect([bad, globProblem(bad)]).toEqual([bad, expect.any(String)]);
    }
  });
});
