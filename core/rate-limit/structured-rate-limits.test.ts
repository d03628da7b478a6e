import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { ActionType, RuleType, Severity } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  ConditionOperator,
  type Rule,
  RuleSchema,
} from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import {
  rateLimitFromStructuredRule,
  specsFromStructuredRules,
  splitGlobList,
} from "./rate-limit-rules.js";
import { InvalidRateLimitSpecError, validateRateLimitSpec } from "./rate-limit-spec.js";

const limitRule = (
  parameters: Record<string, string>,
  over: MessageInitShape<typeof RuleSchema> = {},
): Rule =>
  create(RuleSchema, {
    name: "limit",
    ruleType: RuleType.RATE_LIMIT,
    actions: [{ type: ActionType.THROTTLE, parameters }],
    ...over,
  });

const problemsOf = (rule: Rule) =>
  rateLimitFromStructuredRule(rule, "rules[2]").problems.map((p) => `${p.path}: ${p.message}`);

describe("specsFromStructuredRules", () => {
  it("turns each limit of each enabled RATE_LIMIT rule into a spec, in rule order", () => {
    const rules = [
      create(RuleSchema, {
        ruleId: "deny-rm",
        name: "deny rm",
        ruleType: RuleType.TOOL_RESTRICTION,
        actions: [{ type: ActionType.DENY }],
      }),
      limitRule(
        { requests_per_minute: "60", tokens_per_minute: "10000", per: "api_key" },
        { ruleId: "per-key" },
      ),
      limitRule({ requests_per_hour: "5" }, { ruleId: "off", enabled: false }),
      limitRule({
        requests_per_minute: "10",
        per: "tool",
        tools: "search_*, {web,news}_lookup",
        algorithm: "token_bucket",
        burst: "5",
        failure_mode: "FAIL_OPEN",
      }),
    ];
    const specs = specsFromStructuredRules("p1", rules);
    expect(specs).toEqual([
      {
        id: "p1/per-key/requests_per_minute",
        scope: "api_key",
        unit: "requests",
        limit: 60,
        window: "1m",
        algorithm: "sliding_window",
        failure_mode: "FAIL_CLOSED",
      },
      {
        id: "p1/per-key/tokens_per_minute",
        scope: "api_key",
        unit: "tokens",
        limit: 10000,
        window: "1m",
        algorithm: "sliding_window",
        failure_mode: "FAIL_CLOSED",
      },
      {
        id: "p1/rules[3]/requests_per_minute",
        scope: "tool",
        unit: "requests",
        limit: 5,
        refill: 10,
        window: "1m",
        algorithm: "token_bucket",
        failure_mode: "FAIL_OPEN",
        tools: ["search_*", "{web,news}_lookup"],
      },
    ]);
    for (const s of specs) expect(validateRateLimitSpec(s)).toEqual([]);
  });

  it("gives no specs without RATE_LIMIT rules, and defaults to a tenant sliding window", () => {
    expect(specsFromStructuredRules("p1", [])).toEqual([]);
    expect(specsFromStructuredRules("p1", [limitRule({ requests_per_hour: "100" })])).toEqual([
      {
        id: "p1/rules[0]/requests_per_hour",
        scope: "tenant",
        unit: "requests",
        limit: 100,
        window: "1h",
        algorithm: "sliding_window",
        failure_mode: "FAIL_CLOSED",
      },
    ]);
  });

  it("throws InvalidRateLimitSpecError for an invalid enabled rule", () => {
    expect(() =>
      specsFromStructuredRules("p1", [limitRule({ requests_per_minute: "lots" })]),
    ).toThrow(InvalidRateLimitSpecError);
    // A disabled rule is not read (the management API checks it when it is written).
    expect(
      specsFromStructuredRules("p1", [
        limitRule({ requests_per_minute: "lots" }, { enabled: false }),
      ]),
    ).toEqual([]);
  });
});

describe("rateLimitFromStructuredRule", () => {
  it("accepts every documented parameter", () => {
    expect(
      problemsOf(
        limitRule({
          requests_per_minute: "1",
          requests_per_hour: "2147483647",
          tokens_per_minute: "500",
          per: "workflow",
          algorithm: "sliding_window",
          failure_mode: "FAIL_CLOSED",
        }),
      ),
    ).toEqual([]);
  });

  it("names the parameter of every bad value", () => {
    const cases: [Record<string, string>, string][] = [
      [
        { requests_per_minute: "sixty" },
        'rules[2].actions[0].parameters.requests_per_minute: must be a positive integer in decimal digits, not "sixty"',
      ],
      [
        { requests_per_minute: "-1" },
        'rules[2].actions[0].parameters.requests_per_minute: must be a positive integer in decimal digits, not "-1"',
      ],
      [
        { requests_per_minute: "1.5" },
        'rules[2].actions[0].parameters.requests_per_minute: must be a positive integer in decimal digits, not "1.5"',
      ],
      [
        { requests_per_minute: "0" },
        "rules[2].actions[0].parameters.requests_per_minute: must be >= 1, not 0",
      ],
      [
        { tokens_per_minute: "2147483648" },
        "rules[2].actions[0].parameters.tokens_per_minute: must be <= 2147483647, not 2147483648",
      ],
      [
        { requests_per_minute: "10", limit: "5" },
        "rules[2].actions[0].parameters.limit: unknown rate limit parameter (one of requests_per_minute, requests_per_hour, tokens_per_minute, per, algorithm, burst, failure_mode, tools)",
      ],
      [
        { requests_per_minute: "10", "window size": "1m" },
        'rules[2].actions[0].parameters["window size"]: unknown rate limit parameter (one of requests_per_minute, requests_per_hour, tokens_per_minute, per, algorithm, burst, failure_mode, tools)',
      ],
      [
        { per: "api_key" },
        "rules[2].actions[0].parameters: a RATE_LIMIT rule needs at least one of requests_per_minute, requests_per_hour, tokens_per_minute",
      ],
      [
        { requests_per_minute: "10", per: "user" },
        'rules[2].actions[0].parameters.per: unknown per "user" (one of tenant, api_key, workflow, tool)',
      ],
      [
        { requests_per_minute: "10", algorithm: "leaky_bucket" },
        'rules[2].actions[0].parameters.algorithm: unknown algorithm "leaky_bucket" (one of sliding_window, token_bucket)',
      ],
      [
        { requests_per_minute: "10", failure_mode: "fail_open" },
        'rules[2].actions[0].parameters.failure_mode: unknown failure_mode "fail_open" (one of FAIL_CLOSED, FAIL_OPEN)',
      ],
      [
        { requests_per_minute: "10", burst: "5" },
        'rules[2].actions[0].parameters.burst: is for algorithm "token_bucket" only',
      ],
      [
        {
          requests_per_minute: "10",
          tokens_per_minute: "100",
          algorithm: "token_bucket",
          burst: "5",
        },
        "rules[2].actions[0].parameters.burst: needs a rule with a single limit",
      ],
      [
        { requests_per_minute: "10", tools: "search_*" },
        'rules[2].actions[0].parameters.tools: is for per "tool" only',
      ],
      [
        { requests_per_minute: "10", per: "tool", tools: "search_*,,db_*" },
        "rules[2].actions[0].parameters.tools: entry 2: must not be empty",
      ],
      [
        { requests_per_minute: "10", per: "tool", tools: "[z-a]*" },
        "rules[2].actions[0].parameters.tools: entry 1: invalid glob",
      ],
    ];
    for (const [parameters, expected] of cases) {
      const problems = problemsOf(limitRule(parameters));
      expect(problems[0], JSON.stringify(parameters)).toContain(expected);
    }
  });

  it("takes no conditions and exactly one THROTTLE action, without message, severity or terminal", () => {
    const condition = {
      kind: {
        case: "field" as const,
        value: {
          field: "model_id",
          operator: ConditionOperator.EQUALS,
          value: { kind: { case: "stringValue" as const, value: "x" } },
        },
      },
    };
    expect(
      problemsOf(limitRule({ requests_per_minute: "1" }, { conditions: [condition] })),
    ).toEqual([
      expect.stringMatching(/^rules\[2\]\.conditions: are not supported for RATE_LIMIT rules/),
    ]);
    expect(
      problemsOf(
        limitRule(
          {},
          {
            actions: [
              { type: ActionType.THROTTLE, parameters: { requests_per_minute: "1" } },
              { type: ActionType.DENY },
            ],
          },
        ),
      ),
    ).toEqual([
      expect.stringMatching(
        /^rules\[2\]\.actions\[1\]\.type: a RATE_LIMIT rule takes only its ACTION_TYPE_THROTTLE action, not ACTION_TYPE_DENY/,
      ),
    ]);
    const two = { type: ActionType.THROTTLE, parameters: { requests_per_minute: "1" } };
    expect(problemsOf(limitRule({}, { actions: [two, two] }))).toEqual([
      "rules[2].actions: a RATE_LIMIT rule declares its limits in exactly one ACTION_TYPE_THROTTLE action, not 2",
    ]);
    expect(problemsOf(limitRule({}, { actions: [] }))).toEqual([
      "rules[2].actions: a RATE_LIMIT rule declares its limits in exactly one ACTION_TYPE_THROTTLE action, not 0",
    ]);
    expect(
      problemsOf(
        limitRule(
          {},
          {
            actions: [
              {
                type: ActionType.THROTTLE,
                parameters: { requests_per_minute: "1" },
                message: "slow down",
                severity: Severity.HIGH,
                terminal: true,
              },
            ],
          },
        ),
      ),
    ).toEqual([
      "rules[2].actions[0].message: is not supported for RATE_LIMIT rules",
      "rules[2].actions[0].severity: is not supported for RATE_LIMIT rules",
      "rules[2].actions[0].terminal: is not supported for RATE_LIMIT rules",
    ]);
  });
});

describe("splitGlobList", () => {
  it("splits at top-level commas only, trimming entries", () => {
    expect(splitGlobList("a")).toEqual(["a"]);
    expect(splitGlobList(" search_* , db.read ")).toEqual(["search_*", "db.read"]);
    expect(splitGlobList("{a,b}_x,[,]y,c\\,d")).toEqual(["{a,b}_x", "[,]y", "c\\,d"]);
    expect(splitGlobList("a,,b")).toEqual(["a", "", "b"]);
    expect(splitGlobList("")).toEqual([""]);
  });
});
