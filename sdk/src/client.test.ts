import { create, toJson } from "@bufbuild/protobuf";
import { createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  ActionType,
  Decision,
  RuleType,
  Severity,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  EvaluatePolicyResponseSchema,
  PolicyService,
} from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { jsonFetch, routerClient } from "../../test/harness/sdk-client-stubs.js";
import { FulcrumClient } from "./index.js";

// FulcrumClient's happy path: what goes over the wire (headers, deadline, context,
// format, which RPC) and how an answer maps to a decision. Failure modes and configuration
// mistakes are in client-failures.test.ts; the fetch and router stand-ins are in
// test/harness/sdk-client-stubs.ts.

const denyResponse = create(EvaluatePolicyResponseSchema, {
  decisionId: "dec_1",
  result: {
    decision: Decision.DENY,
    wouldDecide: Decision.DENY,
    matchedRules: [
      {
        ruleId: "no_shell",
        ruleName: "No shell access",
        ruleType: RuleType.TOOL_RESTRICTION,
        priority: 10,
        matchedConditions: ['tool_names IN ["shell_*"]'],
        action: ActionType.DENY,
        reason: "tool shell_run is denied",
        policyId: "pol_safe_tools",
      },
    ],
    actions: [{ type: ActionType.DENY, message: "no shell", severity: Severity.HIGH }],
    reasons: ["tool shell_run is denied"],
    message: "2 active policies evaluated",
    metadata: { "policy_version.pol_safe_tools": "v1", "policy_version.pol_models": "v2" },
    evaluatedAt: { seconds: 1_700_000_000n, nanos: 0 },
    evaluationDurationMs: 0.4,
  },
});

describe("FulcrumClient wire format", () => {
  it("sends x-api-key, the deadline and the context to EvaluatePolicy (no policy id)", async () => {
    const { fetch, requests } = jsonFetch(toJson(EvaluatePolicyResponseSchema, denyResponse));
    const client = new FulcrumClient({
      baseUrl: "https://edge.example",
      apiKey: "fk_test_secret",
      tenantId: "demo",
      fetch,
      useBinaryFormat: false,
    });
    await client.evaluate({
      workflowId: "wf",
      action: "run_shell",
      model: "gpt-4o",
      tools: ["shell_run"],
      inputText: "ls",
      estimatedCost: 0.02,
      attributes: { region: "eu" },
      phase: "PRE_TOOL_CALL",
    });
    const [request] = requests;
    expect(request?.url).toBe(
      "https://edge.example/fulcrum.policy.v1.PolicyService/EvaluatePolicy",
    );
    expect(request?.headers.get("x-api-key")).toBe("fk_test_secret");
    expect(request?.headers.get("connect-timeout-ms")).toBe("500");
    expect(request?.body).toEqual({
      context: {
        tenantId: "demo",
        workflowId: "wf",
        action: "run_shell",
        modelId: "gpt-4o",
        toolNames: ["shell_run"],
        inputText: "ls",
        estimatedCostUsd: 0.02,
        attributes: { region: "eu" },
        phase: "PHASE_PRE_TOOL_CALL",
      },
    });
  });

  it("sends no api key header when none is configured, and no tenant when none is set", async () => {
    const { fetch, requests } = jsonFetch(toJson(EvaluatePolicyResponseSchema, denyResponse));
    const client = new FulcrumClient({ baseUrl: "https://e", fetch, useBinaryFormat: false });
    await client.evaluate({ inputText: "hi" });
    expect(requests[0]?.headers.has("x-api-key")).toBe(false);
    expect(requests[0]?.body).toEqual({ context: { inputText: "hi" } });
  });

  it("uses binary Protobuf by default", async () => {
    const requests: Headers[] = [];
    const fetch = (async (_input: RequestInfo | URL, init?: RequestInit) => {
      requests.push(new Headers(init?.headers));
      throw new TypeError("fetch failed");
    }) as typeof globalThis.fetch;
    await new FulcrumClient({ baseUrl: "https://e", fetch }).evaluate({});
    expect(requests[0]?.get("content-type")).toBe("application/proto");
  });

  it("calls CheckPolicy with the tenant for check()", async () => {
    const { fetch, requests } = jsonFetch({
      decision: "DECISION_ALLOW",
      allowed: true,
      decisionId: "dec_2",
      policyVersion: "v1",
    });
    const client = new FulcrumClient({
      baseUrl: "https://e",
      tenantId: "test",
      fetch,
      useBinaryFormat: false,
    });
    const decision = await client.check({}, { policyId: "test" });
    expect(requests[0]?.url).toMatch(/PolicyService\/CheckPolicy$/);
    expect(requests[0]?.body).toEqual({
      tenantId: "test",
      policyId: "test",
      context: { tenantId: "test" },
    });
    expect(decision).toMatchObject({
      decision: "ALLOW",
      allowed: true,
      decisionId: "dec_2",
      policyVersions: { test: "v1" },
    });
  });
});

describe("decision mapping", () => {
  it("maps the tenant-wide result into a full decision", async () => {
    const client = routerClient(() => denyResponse);
    const decision = await client.evaluate({ tools: ["shell_run"] });
    expect(decision).toMatchObject({
      decision: "DENY",
      allowed: false,
      decisionId: "dec_1",
      reasons: ["tool shell_run is denied"],
      matchedRules: [
        {
          ruleId: "no_shell",
          ruleName: "No shell access",
          ruleType: "TOOL_RESTRICTION",
          priority: 10,
          matchedConditions: ['tool_names IN ["shell_*"]'],
          action: "DENY",
          reason: "tool shell_run is denied",
          policyId: "pol_safe_tools",
        },
      ],
      actions: [
        { type: "DENY", message: "no shell", severity: "HIGH", terminal: false, parameters: {} },
      ],
      results: [],
      policyVersions: { pol_safe_tools: "v1", pol_models: "v2" },
      message: "2 active policies evaluated",
      dryRun: false,
      wouldDecide: "DENY",
      evaluationDurationMs: 0.4,
      evaluatedAtMs: 1_700_000_000_000,
      failedOpen: false,
      failedClosed: false,
    });
    expect(decision.error).toBeUndefined();
    expect(decision.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it("treats WARN as allowed and REQUIRE_APPROVAL as not allowed", async () => {
    const warn = routerClient(() => ({ result: { decision: Decision.WARN } }));
    expect(await warn.allowed({})).toBe(true);
    const approval = routerClient(() => ({ result: { decision: Decision.REQUIRE_APPROVAL } }));
    expect(await approval.allowed({})).toBe(false);
  });

  it("never reads a missing or unknown decision as ALLOW", async () => {
    expect((await routerClient(() => ({})).evaluate({})).decision).toBe("DENY");
    const unknown = routerClient(() => ({ result: { decision: 42 } }));
    expect((await unknown.evaluate({})).allowed).toBe(false);
  });

  it("reports the dry-run verdict in wouldDecide", async () => {
    const client = routerClient(() => ({
      result: { decision: Decision.ALLOW, wouldDecide: Decision.DENY, dryRun: true },
    }));
    expect(await client.evaluate({}, { dryRun: true })).toMatchObject({
      decision: "ALLOW",
      allowed: true,
      dryRun: true,
      wouldDecide: "DENY",
    });
  });

  it("names one policy through EvaluatePolicy and several through EvaluatePolicies", async () => {
    const seen: string[] = [];
    const transport = createRouterTransport(({ service }) => {
      service(PolicyService, {
        evaluatePolicy(req) {
          seen.push(`one:${req.policyId}:${req.dryRun}`);
          return {
            decisionId: "dec_a",
            result: { policyId: req.policyId, policyVersion: "v3", decision: Decision.ALLOW },
          };
        },
        evaluatePolicies(req) {
          seen.push(`many:${req.policyIds.join(",")}`);
          return {
            decisionId: "dec_b",
            finalDecision: Decision.DENY,
            reasons: ["model x is not approved"],
            results: [
              { policyId: "pol_a", policyVersion: "v1", decision: Decision.ALLOW },
              {
                policyId: "pol_b",
                policyVersion: "v2",
                policyName: "Models",
                decision: Decision.DENY,
                reasons: ["model x is not approved"],
                matchedRules: [{ ruleId: "allowed_models", policyId: "pol_b" }],
              },
            ],
          };
        },
      });
    });
    const client = new FulcrumClient({ baseUrl: "x", transport, tenantId: "demo" });
    const one = await client.evaluate({}, { policyIds: ["pol_a"], dryRun: true });
    expect(one).toMatchObject({ decision: "ALLOW", policyVersions: { pol_a: "v3" } });
    expect(one.results).toHaveLength(1);
    const many = await client.evaluate({ model: "x" }, { policyIds: ["pol_a", "pol_b"] });
    expect(seen).toEqual(["one:pol_a:true", "many:pol_a,pol_b"]);
    expect(many).toMatchObject({
      decision: "DENY",
      decisionId: "dec_b",
      policyVersions: { pol_a: "v1", pol_b: "v2" },
      wouldDecide: "DENY",
      matchedRules: [{ ruleId: "allowed_models", policyId: "pol_b" }],
    });
    expect(many.results.map((r) => [r.policyId, r.decision, r.policyName])).toEqual([
      ["pol_a", "ALLOW", ""],
      ["pol_b", "DENY", "Models"],
    ]);
  });
});
