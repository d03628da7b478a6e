/**
 * The decisions bench:edge sends: the runbook's CheckPolicy against one tenant
 * policy made of structured rules (deny shell tools, deny credentials in the
 * prompt, a rate limit that never trips), as the edge's Connect JSON request
 * and as OPA's REST input, with how each reply is checked.
 */
import { create, fromJson, type JsonObject } from "@bufbuild/protobuf";
import { toPolicyContext } from "../../core/policy/decision-input.js";
import type { PolicyContext } from "../../core/policy/tenant-config.js";
import {
  ActionType,
  EvaluationContextSchema,
  RuleType,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  ConditionOperator,
  type Rule,
  RuleSchema,
} from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import type { HttpReply, LoadRequest } from "../load.js";

export const CHECK_POLICY = "/fulcrum.policy.v1.PolicyService/CheckPolicy";
/** The wrapper module's document (functions/src/policy-compiler/entry-module.ts). */
export const OPA_DECISION = "/v1/data/fulcrum/entry/result";
const JSON_HEADERS = { "content-type": "application/json" };

/** A limit no run reaches: the counter is checked (one Redis round trip) but never trips. */
export const RATE_LIMIT_PER_MINUTE = "10000000";

/**
 * The runbook policy (policies/fixtures/tenants.json, tenant `test`) as structured
 * rules, plus a tenant-wide RATE_LIMIT rule.
 */
export function benchRules(): Rule[] {
  return [
    create(RuleSchema, {
      ruleId: "no_shell",
      name: "No shell access",
      ruleType: RuleType.TOOL_RESTRICTION,
      priority: 10,
      conditions: [
        {
          kind: {
            case: "field",
            value: {
              field: "tool_names",
              operator: ConditionOperator.IN,
              value: {
                kind: {
                  case: "listValue",
                  value: { values: [{ kind: { case: "stringValue", value: "shell_*" } }] },
                },
              },
            },
          },
        },
      ],
      actions: [{ type: ActionType.DENY, message: "shell tools are blocked" }],
    }),
    create(RuleSchema, {
      ruleId: "secrets",
      name: "No credentials in prompts",
      ruleType: RuleType.CONTENT_FILTER,
      priority: 5,
      conditions: [
        {
          kind: {
            case: "field",
            value: {
              field: "input_text",
              operator: ConditionOperator.MATCHES,
              value: { kind: { case: "stringValue", value: "(?i)password\\s*[:=]" } },
            },
          },
        },
      ],
      actions: [{ type: ActionType.DENY, message: "credentials in the prompt" }],
    }),
    create(RuleSchema, {
      ruleId: "throughput",
      name: "Tenant request budget",
      ruleType: RuleType.RATE_LIMIT,
      actions: [
        {
          type: ActionType.THROTTLE,
          parameters: { requests_per_minute: RATE_LIMIT_PER_MINUTE, per: "tenant" },
        },
      ],
    }),
  ];
}

export type Expected = "ALLOW" | "DENY";

/** One logical decision, sent round-robin; every target must reach `expected` with `ruleIds`. */
export interface Scenario {
  name: string;
  /** EvaluationContext in Connect (proto3) JSON, without tenant_id (the key decides). */
  context: JsonObject;
  expected: Expected;
  ruleIds: string[];
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "allow: clean tool call",
    context: {
      workflowId: "wf_bench",
      userId: "u_bench",
      userRoles: ["analyst"],
      phase: "PHASE_PRE_TOOL_CALL",
      modelId: "gpt-4o-mini",
      toolNames: ["read_file", "search_docs"],
      inputText: "Summarise the attached runbook for the on-call team.",
      estimatedCostUsd: 0.01,
    },
    expected: "ALLOW",
    ruleIds: [],
  },
  {
    name: "deny: shell tool",
    context: { workflowId: "wf_bench", phase: "PHASE_PRE_TOOL_CALL", toolNames: ["shell_exec"] },
    expected: "DENY",
    ruleIds: ["no_shell"],
  },
  {
    name: "deny: credentials in the prompt",
    context: {
      workflowId: "wf_bench",
      phase: "PHASE_PRE_LLM_CALL",
      modelId: "gpt-4o",
      inputText: "log in with Password: hunter2 and run the report",
    },
    expected: "DENY",
    ruleIds: ["secrets"],
  },
];

/** What a target answered, reduced to what must agree everywhere. */
export interface Verdict {
  decision: string;
  ruleIds: string[];
}

export interface BenchPolicy {
  tenantId: string;
  policyId: string;
  /** A `check`-scope API key of the tenant. */
  checkKey: string;
}

interface CheckReply {
  decision?: string;
  reason?: string;
  matchedRules?: { ruleId?: string }[];
  rateLimits?: { limitId?: string; exceeded?: boolean; failed?: boolean }[];
}

/** The reply's verdict, or throws when it is not a plain policy decision with its rate limit counted. */
export function edgeVerdict(reply: HttpReply): Verdict {
  const body = JSON.parse(reply.body) as CheckReply;
  if (body.reason !== "DECISION_REASON_POLICY") {
    throw new Error(`reason ${body.reason}, expected DECISION_REASON_POLICY`);
  }
  const limits = body.rateLimits ?? [];
  if (limits.length !== 1 || limits[0]?.exceeded || limits[0]?.failed) {
    throw new Error(`rate limit not counted as expected: ${JSON.stringify(limits)}`);
  }
  return {
    decision: (body.decision ?? "").replace(/^DECISION_/, ""),
    ruleIds: (body.matchedRules ?? []).map((m) => m.ruleId ?? ""),
  };
}

function mismatch(verdict: Verdict, scenario: Scenario): string | undefined {
  const got = `${verdict.decision} [${verdict.ruleIds.join(",")}]`;
  const want = `${scenario.expected} [${scenario.ruleIds.join(",")}]`;
  return got === want ? undefined : `${scenario.name}: ${got}, expected ${want}`;
}

export function edgeRequest(policy: BenchPolicy, scenario: Scenario): LoadRequest {
  return {
    path: CHECK_POLICY,
    body: JSON.stringify({ policyId: policy.policyId, context: scenario.context }),
    headers: { ...JSON_HEADERS, "x-api-key": policy.checkKey },
    check: (reply) => mismatch(edgeVerdict(reply), scenario),
  };
}

/** The document the compiled policy gets as `input`, exactly as the edge builds it. */
export function policyInput(tenantId: string, scenario: Scenario): PolicyContext {
  const context = fromJson(EvaluationContextSchema, scenario.context);
  return { ...toPolicyContext(context), tenant_id: tenantId };
}

interface VerdictSets {
  deny?: { rule_id?: string }[];
  require_approval?: { rule_id?: string }[];
  warn?: { rule_id?: string }[];
  audit?: { rule_id?: string }[];
}

/** OPA answers the wrapper's verdict sets; the strongest non-empty set decides. */
export function opaVerdict(reply: HttpReply): Verdict {
  const sets = (JSON.parse(reply.body) as { result?: VerdictSets }).result;
  if (!sets) throw new Error("no result (the entry module is not loaded?)");
  const order = [
    ["DENY", sets.deny],
    ["REQUIRE_APPROVAL", sets.require_approval],
    ["WARN", sets.warn],
  ] as const;
  const [decision, matched] = order.find(([, set]) => (set?.length ?? 0) > 0) ?? ["ALLOW", []];
  return { decision, ruleIds: (matched ?? []).map((m) => m.rule_id ?? "") };
}

export function opaRequest(policy: BenchPolicy, scenario: Scenario): LoadRequest {
  return {
    path: OPA_DECISION,
    body: JSON.stringify({ input: policyInput(policy.tenantId, scenario) }),
    headers: JSON_HEADERS,
    check: (reply) => mismatch(opaVerdict(reply), scenario),
  };
}
