/**
 * The decisions the HTTP benchmark sends, as the edge's Connect JSON request
 * and as OPA's REST input, with how each target's reply is checked.
 */
import { fromJson, type JsonObject } from "@bufbuild/protobuf";
import { toDecisionInput } from "../../core/policy/decision-input.js";
import { expandDecision } from "../../core/policy/expand-decision.js";
import {
  type PreparedTenantData,
  prepareTenantData,
} from "../../core/policy/prepare-tenant-data.js";
import type {
  DecisionName,
  DecisionOutput,
  RawDecisionOutput,
  TenantConfig,
} from "../../core/policy/tenant-config.js";
import fixtures from "../../policies/fixtures/tenants.json" with { type: "json" };
import { EvaluatePolicyRequestSchema } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import type { HttpReply, LoadRequest } from "../load.js";

export const EVALUATE_POLICY = "/fulcrum.policy.v1.PolicyService/EvaluatePolicy";
export const OPA_DECISION = "/v1/data/fulcrum/governance/decision";
const JSON_HEADERS = { "content-type": "application/json" };
export const BENCH_TENANT = "demo";

let prepared: PreparedTenantData | undefined;

/** The data document of the bench tenant, as the edge hands it to setData(). */
export function benchTenantData(): PreparedTenantData {
  prepared ??= prepareTenantData(
    (fixtures as unknown as Record<string, TenantConfig>)[BENCH_TENANT] as TenantConfig,
  );
  return prepared;
}

/** The logical decisions sent round-robin; each target must reach `expected`. */
export interface Scenario {
  name: string;
  /** The EvaluatePolicy request in Connect (proto3) JSON. */
  request: JsonObject;
  expected: DecisionName;
}

export const SCENARIOS: readonly Scenario[] = [
  {
    name: "deny: shell tool (pol_safe_tools)",
    request: {
      policy_id: "pol_safe_tools",
      context: { tenant_id: BENCH_TENANT, tool_names: ["shell_exec"] },
    },
    expected: "DENY",
  },
  {
    name: "allow: approved model under the cost cap (pol_models)",
    request: {
      policy_id: "pol_models",
      context: {
        tenant_id: BENCH_TENANT,
        model_id: "claude-sonnet-4",
        estimated_cost_usd: 0.02,
        phase: "PHASE_PRE_LLM_CALL",
      },
    },
    expected: "ALLOW",
  },
  {
    name: "guard: all active policies, no policy_id (pol_pii warns)",
    request: {
      context: {
        tenant_id: BENCH_TENANT,
        workflow_id: "wf_bench",
        user_id: "u_bench",
        user_roles: ["analyst"],
        model_id: "gpt-4o-mini",
        tool_names: ["read_file", "search_docs"],
        input_text: "Summarise the attached runbook. My api_key is sk-test-123.",
        estimated_cost_usd: 0.01,
      },
    },
    expected: "WARN",
  },
];

/** What a target answered for a scenario, reduced to what must agree everywhere. */
export interface Verdict {
  decision: string;
  ruleIds: string[];
}

export function edgeRequest(scenario: Scenario): LoadRequest {
  const want = `DECISION_${scenario.expected}`;
  return {
    path: EVALUATE_POLICY,
    body: JSON.stringify(scenario.request),
    headers: JSON_HEADERS,
    check(reply) {
      const decision = (JSON.parse(reply.body) as { result?: { decision?: string } }).result
        ?.decision;
      return decision === want ? undefined : `decision ${decision}, expected ${want}`;
    },
  };
}

export function edgeVerdict(reply: HttpReply): Verdict {
  const result = (
    JSON.parse(reply.body) as {
      result?: { decision?: string; matchedRules?: { ruleId?: string }[] };
    }
  ).result;
  return {
    decision: (result?.decision ?? "").replace(/^DECISION_/, ""),
    ruleIds: (result?.matchedRules ?? []).map((m) => m.ruleId ?? ""),
  };
}

/** OPA's input, built exactly as the edge builds it from the decoded proto request. */
export function opaInput(scenario: Scenario) {
  const request = fromJson(EvaluatePolicyRequestSchema, scenario.request);
  return toDecisionInput(
    request.context,
    request.policyId ? [request.policyId] : [],
    request.dryRun,
  );
}

/**
 * OPA answers with the Rego's raw decision (only what depends on the request);
 * the client expands it exactly as the edge does, to compare like with like.
 * Expansion runs in the load generator, not in OPA's measured server time.
 */
function opaDecision(reply: HttpReply): DecisionOutput | undefined {
  const raw = (JSON.parse(reply.body) as { result?: RawDecisionOutput }).result;
  return raw ? expandDecision(benchTenantData(), raw) : undefined;
}

export function opaRequest(scenario: Scenario): LoadRequest {
  return {
    path: OPA_DECISION,
    body: JSON.stringify({ input: opaInput(scenario) }),
    headers: JSON_HEADERS,
    check(reply) {
      const decision = opaDecision(reply)?.decision;
      return decision === scenario.expected
        ? undefined
        : `decision ${decision}, expected ${scenario.expected}`;
    },
  };
}

export function opaVerdict(reply: HttpReply): Verdict {
  const output = opaDecision(reply);
  return {
    decision: output?.decision ?? "",
    ruleIds: (output?.matched_rules ?? []).map((m) => m.rule_id),
  };
}
