import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { beforeAll, describe, expect, it } from "vitest";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { VerdictSets } from "../../../core/policy-bundle/published-policy.js";
import {
  ActionType,
  RuleType,
  Severity,
} from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  type Condition,
  LogicalOperator,
  ConditionOperator as Op,
  type Rule,
  RuleSchema,
  type Value,
} from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { runOpa } from "../../../scripts/opa.js";
import { GENERATED_HEADER, rulesToRego } from "./rules-to-rego.js";
import { evaluator, firedIds, testCompiler } from "./test-support.js";

type Kind = Value["kind"];
const s = (value: string): Kind => ({ case: "stringValue", value });
const n = (value: number): Kind => ({ case: "floatValue", value });
const list = (...values: string[]): Kind => ({
  case: "listValue",
  value: { values: values.map((v) => ({ kind: s(v) })) } as never,
});
const field = (f: string, operator: Op, kind: Kind, negate = false): Condition =>
  ({
    kind: { case: "field", value: { field: f, operator, value: { kind }, negate } },
  }) as Condition;
const logical = (operator: LogicalOperator, ...conditions: Condition[]): Condition =>
  ({ kind: { case: "logical", value: { operator, conditions } } }) as Condition;
const deny = (ruleId: string, ...conditions: Condition[]): Rule =>
  create(RuleSchema, { ruleId, name: ruleId, conditions, actions: [{ type: ActionType.DENY }] });

const RULES: Rule[] = [
  deny("eq", field("model_id", Op.EQUALS, s("gpt-4"))),
  deny("ne", field("model_id", Op.NOT_EQUALS, s("gpt-4"))),
  deny("gt", field("estimated_cost_usd", Op.GT, n(1))),
  deny("lt", field("estimated_cost_usd", Op.LT, { case: "intValue", value: 1n })),
  deny("ge", field("estimated_cost_usd", Op.GE, n(1))),
  deny("le", field("estimated_cost_usd", Op.LE, n(0))),
  deny("re", field("input_text", Op.MATCHES, s("(?i)password\\s*[:=]"))),
  deny("contains_text", field("output_text", Op.CONTAINS, s("secret"))),
  deny("contains_tool", field("tool_names", Op.CONTAINS, s("shell"))),
  deny("in_glob", field("tool_names", Op.IN, list("delete_*", "drop", "{rm,rmdir}"))),
  deny("model_glob", field("model_id", Op.IN, list("claude-*"))),
  deny("not_in_tools", field("tool_names", Op.NOT_IN, list("search", "read_*"))),
  deny("not_in_phase", field("phase", Op.NOT_IN, list("PRE_LLM_CALL", "POST_LLM_CALL"))),
  deny("starts", field("workflow_id", Op.STARTS_WITH, s("billing-"))),
  deny("ends", field("user_id", Op.ENDS_WITH, s("@ext"))),
  deny("attr", field("attributes.region", Op.IN, list("eu-west", "eu-north"))),
  deny("attr_kw", field("attributes.if", Op.EQUALS, s("yes"))),
  deny("negate", field("user_roles", Op.CONTAINS, s("admin"), true)),
  deny(
    "nested",
    field("action", Op.EQUALS, s("send_email")),
    logical(
      LogicalOperator.OR,
      field("user_roles", Op.IN, list("intern")),
      logical(
        LogicalOperator.AND,
        field("envelope_id", Op.STARTS_WITH, s("env-")),
        logical(LogicalOperator.NOT, field("input_text", Op.CONTAINS, s("ok"))),
      ),
    ),
  ),
];

describe("rulesToRego + OPA", () => {
  let evaluate: (input: Record<string, unknown>) => VerdictSets;
  const fired = (input: Record<string, unknown>) => firedIds(evaluate(input));

  beforeAll(async () => {
    const compiled = await (await testCompiler()).compile({ kind: "rules", rules: RULES });
    expect(compiled.regoSource).toBe(rulesToRego(RULES));
    evaluate = await evaluator(compiled);
  });

  // A missing cost is 0 (le, lt); nobody holds admin (negate); no tools (not_in_tools).
  const always = ["le", "lt", "negate", "not_in_tools"];

  it("fires nothing positive on an empty context", () => {
    expect(fired({})).toEqual(always.sort());
  });

  it.each([
    ["eq + model_glob miss", { model_id: "gpt-4" }, ["eq"]],
    ["ne", { model_id: "gpt-3" }, ["ne"]],
    ["model glob", { model_id: "claude-3.5/sonnet" }, ["model_glob", "ne"]],
    ["gt + ge", { estimated_cost_usd: 1.5 }, ["ge", "gt"]],
    ["ge at the bound", { estimated_cost_usd: 1 }, ["ge"]],
    ["lt", { estimated_cost_usd: 0.5 }, ["lt"]],
    ["regex", { input_text: "my PASSWORD = x" }, ["re"]],
    ["regex miss", { input_text: "password is" }, []],
    ["substring", { output_text: "a secret!" }, ["contains_text"]],
    ["list membership", { tool_names: ["ls", "shell"] }, ["contains_tool"]],
    ["globs, braces", { tool_names: ["rmdir"] }, ["in_glob"]],
    ["glob prefix", { tool_names: ["read_file", "delete_db"] }, ["in_glob"]],
    ["NOT_IN holds when no tool is listed", { tool_names: ["write"] }, []],
    ["NOT_IN fails when one tool is listed", { tool_names: ["write", "search"] }, []],
    ["phase NOT_IN", { phase: "PRE_TOOL_CALL" }, ["not_in_phase"]],
    ["phase NOT_IN miss", { phase: "PRE_LLM_CALL" }, []],
    ["starts", { workflow_id: "billing-7" }, ["starts"]],
    ["ends", { user_id: "bob@ext" }, ["ends"]],
    ["attributes", { attributes: { region: "eu-north", if: "yes" } }, ["attr", "attr_kw"]],
    ["negate", { user_roles: ["admin"] }, []],
    ["nested OR (first)", { action: "send_email", user_roles: ["intern"] }, ["nested"]],
    ["nested AND + NOT", { action: "send_email", envelope_id: "env-1" }, ["nested"]],
    ["nested NOT fails", { action: "send_email", envelope_id: "env-1", input_text: "ok" }, []],
    ["nested needs the action", { envelope_id: "env-1" }, []],
  ])("%s", (_, input, extra) => {
    const base = always.filter((id) => {
      if (id === "le" || id === "lt") return !("estimated_cost_usd" in input);
      if (id === "negate")
        return !(input as { user_roles?: string[] }).user_roles?.includes("admin");
      if (id === "not_in_tools") {
        const tools = (input as { tool_names?: string[] }).tool_names ?? [];
        return !tools.some((t) => t === "search" || t.startsWith("read_"));
      }
      return true;
    });
    expect(fired(input)).toEqual([...base, ...extra].sort());
  });

  it("carries the rule's fields into the element", async () => {
    const rule = create(RuleSchema, {
      ruleId: "r1",
      name: "Costly",
      ruleType: RuleType.COST_CONTROL,
      priority: 7,
      conditions: [field("estimated_cost_usd", Op.GT, n(10))],
      actions: [
        { type: ActionType.REQUIRE_APPROVAL, message: "ask first", severity: Severity.HIGH },
        { type: ActionType.AUDIT },
        { type: ActionType.NOTIFY, message: "not a verdict" },
      ],
    });
    const disabled = create(RuleSchema, { enabled: false, actions: [{ type: ActionType.DENY }] });
    const noConditions = create(RuleSchema, { actions: [{ type: ActionType.WARN }] });
    const compiled = await (await testCompiler()).compile({
      kind: "rules",
      rules: [rule, disabled, noConditions],
    });
    const run = await evaluator(compiled);
    expect(run({ estimated_cost_usd: 11 })).toEqual({
      deny: [],
      require_approval: [
        {
          message: "ask first",
          rule_id: "r1",
          rule_name: "Costly",
          rule_type: "COST_CONTROL",
          severity: "HIGH",
          priority: 7,
        },
      ],
      warn: [{ message: "rules[2] matched", rule_id: "rules[2]", priority: 0 }],
      audit: [
        {
          message: "Costly matched",
          rule_id: "r1",
          rule_name: "Costly",
          rule_type: "COST_CONTROL",
          priority: 7,
        },
      ],
    });
  });
});

describe("rulesToRego", () => {
  it("is deterministic and formatted as opa fmt formats it", async () => {
    const a = rulesToRego(RULES);
    expect(rulesToRego(RULES)).toBe(a);
    const fmt = await runOpa(["fmt"], { stdin: a });
    expect(fmt.stdout).toBe(a);
  });

  it.each([
    [
      "unknown field",
      deny("x", field("tool", Op.EQUALS, s("a"))),
      'rules[0].conditions[0].field: unknown field "tool"',
    ],
    [
      "bad regex",
      deny("x", field("input_text", Op.MATCHES, s("(?<=a)b"))),
      "rules[0].conditions[0].value: invalid RE2 pattern",
    ],
    [
      "bad glob",
      deny("x", field("tool_names", Op.IN, list("ok", "[a"))),
      "rules[0].conditions[0].value[1]: invalid glob",
    ],
    [
      "number op on text",
      deny("x", field("model_id", Op.GT, n(1))),
      "rules[0].conditions[0].value: GT compares numbers",
    ],
    [
      "type mismatch",
      deny("x", field("model_id", Op.EQUALS, n(1))),
      "rules[0].conditions[0].value: must be a string for model_id",
    ],
    [
      "unknown phase",
      deny("x", field("phase", Op.EQUALS, s("pre_tool_call"))),
      "rules[0].conditions[0].value: unknown phase",
    ],
    [
      "IN without a list",
      deny("x", field("user_roles", Op.IN, s("a"))),
      "rules[0].conditions[0].value: must be a list_value",
    ],
    [
      "lone surrogate",
      deny("x", field("input_text", Op.CONTAINS, s("a\uD800"))),
      "rules[0].conditions[0].value: is not well-formed Unicode",
    ],
    [
      "nested path",
      deny(
        "x",
        logical(
          LogicalOperator.AND,
          field("model_id", Op.EQUALS, s("a")),
          field("nope", Op.EQUALS, s("a")),
        ),
      ),
      "rules[0].conditions[0].conditions[1].field: unknown field",
    ],
  ])("refuses %s naming the field", (_, rule, message) => {
    expect(() => rulesToRego([rule])).toThrow(message);
  });

  it("checks disabled rules too", () => {
    const rule = deny("x", field("nope", Op.EQUALS, s("a")));
    rule.enabled = false;
    expect(() => rulesToRego([rule])).toThrow("rules[0].conditions[0].field");
  });
});

describe("RATE_LIMIT rules", () => {
  const limit = (
    parameters: Record<string, string>,
    over: MessageInitShape<typeof RuleSchema> = {},
  ): Rule =>
    create(RuleSchema, {
      ruleId: "rpm",
      name: "rpm",
      ruleType: RuleType.RATE_LIMIT,
      actions: [{ type: ActionType.THROTTLE, parameters }],
      ...over,
    });

  it("compile to nothing: the edge enforces them from the published rate_limits", async () => {
    const rules = [limit({ requests_per_minute: "60", per: "api_key" })];
    expect(rulesToRego(rules)).toBe(`${GENERATED_HEADER}\npackage fulcrum.policy\n`);
    const compiled = await (await testCompiler()).compile({ kind: "rules", rules });
    const run = await evaluator(compiled);
    expect(run({ tool_names: ["x"] })).toEqual({
      deny: [],
      require_approval: [],
      warn: [],
      audit: [],
    });
  });

  it.each([
    [
      "a bad count",
      limit({ requests_per_minute: "sixty" }),
      'rules[1].actions[0].parameters.requests_per_minute: must be a positive integer in decimal digits, not "sixty"',
    ],
    [
      "an unknown parameter",
      limit({ requests_per_minute: "1", window: "1m" }),
      "rules[1].actions[0].parameters.window: unknown rate limit parameter",
    ],
    [
      "conditions",
      limit(
        { requests_per_minute: "1" },
        { conditions: [field("model_id", Op.EQUALS, s("gpt-4"))] },
      ),
      "rules[1].conditions: are not supported for RATE_LIMIT rules",
    ],
    [
      "a DENY action",
      limit(
        {},
        {
          actions: [
            { type: ActionType.DENY },
            { type: ActionType.THROTTLE, parameters: { requests_per_minute: "1" } },
          ],
        },
      ),
      "rules[1].actions[0].type: a RATE_LIMIT rule takes only its ACTION_TYPE_THROTTLE action",
    ],
    [
      "a disabled rule's bad value",
      limit({ requests_per_minute: "1", per: "user" }, { enabled: false }),
      'rules[1].actions[0].parameters.per: unknown per "user"',
    ],
  ])("refuses %s naming the field", (_, rule, message) => {
    const error = (() => {
      try {
        rulesToRego([deny("other"), rule]);
      } catch (e) {
        return e as FulcrumError;
      }
      throw new Error("rulesToRego accepted the rule");
    })();
    expect(error).toBeInstanceOf(FulcrumError);
    expect(error.kind).toBe("Invalid");
    expect(error.message).toContain(message);
  });
});
