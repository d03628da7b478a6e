import { create, toJson } from "@bufbuild/protobuf";
import { createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  ActionType,
  Decision,
  DecisionReason,
  FailureMode,
  RuleType,
  Severity,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  CheckPolicyResponseSchema,
  EvaluatePolicyResponseSchema,
  PolicyService,
} from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { jsonFetch, routerClient, TEST_API_KEY } from "../../test/harness/sdk-client-stubs.js";
import { FulcrumClient, type GuardContext } from "./index.js";

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
    reason: DecisionReason.POLICY,
  },
});

/** A per-workflow requests limit that this call exceeded, and a tokens limit it did not. */
const rateLimitedResponse = create(EvaluatePolicyResponseSchema, {
  decisionId: "dec_rl",
  result: {
    decision: Decision.DENY,
    reason: DecisionReason.RATE_LIMITED,
    reasons: ["rate limit limits/per-workflow/requests_per_minute exceeded"],
    rateLimits: [
      {
        limitId: "limits/per-workflow/requests_per_minute",
        scope: "workflow",
        subject: "support-bot",
        unit: "requests",
        limit: 10,
        remaining: 0,
        resetAt: { seconds: 1_700_000_060n, nanos: 0 },
        retryAfterMs: 1500,
        exceeded: true,
      },
      {
        limitId: "limits/tenant/tokens_per_minute",
        scope: "tenant",
        unit: "tokens",
        limit: 100_000,
        remaining: 98_800,
        retryAfterMs: 0,
      },
    ],
  },
});

describe("FulcrumClient wire format", () => {
  it("sends x-api-key, the deadline and the context to EvaluatePolicy (no policy id)", async () => {
    const { fetch, requests } = jsonFetch(toJson(EvaluatePolicyResponseSchema, denyResponse));
    const client = new FulcrumClient({
      baseUrl: "https://edge.example",
      apiKey: TEST_API_KEY,
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
      estimatedTokens: 1200,
      attributes: { region: "eu" },
      phase: "PRE_TOOL_CALL",
    });
    const [request] = requests;
    expect(request?.url).toBe(
      "https://edge.example/fulcrum.policy.v1.PolicyService/EvaluatePolicy",
    );
    expect(request?.headers.get("x-api-key")).toBe(TEST_API_KEY);
    expect(request?.headers.get("connect-timeout-ms")).toBe("500");
    // No tenant id: the edge takes the tenant from the key.
    expect(request?.body).toEqual({
      context: {
        workflowId: "wf",
        action: "run_shell",
        modelId: "gpt-4o",
        toolNames: ["shell_run"],
        inputText: "ls",
        estimatedCostUsd: 0.02,
        estimatedTokens: 1200,
        attributes: { region: "eu" },
        phase: "PHASE_PRE_TOOL_CALL",
      },
    });
  });

  it("sends the key (trimmed) on every call and never a tenant id, even when one is smuggled in", async () => {
    const { fetch, requests } = jsonFetch(toJson(EvaluatePolicyResponseSchema, denyResponse));
    const client = new FulcrumClient({
      baseUrl: "https://e",
      apiKey: ` ${TEST_API_KEY}\n`,
      fetch,
      useBinaryFormat: false,
    });
    await client.evaluate({ inputText: "hi", tenantId: "other" } as GuardContext);
    await client.check({ tenantId: "other" } as GuardContext);
    expect(requests.map((r) => r.headers.get("x-api-key"))).toEqual([TEST_API_KEY, TEST_API_KEY]);
    expect(requests[0]?.body).toEqual({ context: { inputText: "hi" } });
    expect(JSON.stringify(requests.map((r) => r.body))).not.toContain("tenant");
  });

  it("rounds estimatedTokens up and refuses a negative or non-finite estimate before sending", async () => {
    const { fetch, requests } = jsonFetch(toJson(EvaluatePolicyResponseSchema, denyResponse));
    const client = new FulcrumClient({
      baseUrl: "https://e",
      apiKey: TEST_API_KEY,
      failureMode: "FAIL_OPEN",
      fetch,
      useBinaryFormat: false,
    });
    await client.evaluate({ estimatedTokens: 99.2 });
    expect(requests[0]?.body).toEqual({ context: { estimatedTokens: 100 } });
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 32]) {
      // A local mistake, not an outage: it throws even under FAIL_OPEN.
      await expect(client.evaluate({ estimatedTokens: bad })).rejects.toMatchObject({
        name: "FulcrumError",
        code: "InvalidArgument",
        message: expect.stringContaining("estimatedTokens"),
      });
    }
    expect(requests).toHaveLength(1);
  });

  it("sends the key through a custom transport too", async () => {
    const keys: (string | null)[] = [];
    const client = routerClient((_req, ctx) => {
      keys.push(ctx.requestHeader.get("x-api-key"));
      return denyResponse;
    });
    await client.evaluate({});
    expect(keys).toEqual([TEST_API_KEY]);
  });

  it("uses binary Protobuf by default", async () => {
    const requests: Headers[] = [];
    const fetch = (async (_input: RequestInfo | URL, init?: RequestInit) => {
      requests.push(new Headers(init?.headers));
      throw new TypeError("fetch failed");
    }) as typeof globalThis.fetch;
    await new FulcrumClient({ baseUrl: "https://e", apiKey: TEST_API_KEY, fetch }).evaluate({});
    expect(requests[0]?.get("content-type")).toBe("application/proto");
  });

  it("calls CheckPolicy without a tenant for check() and maps its new fields", async () => {
    const { fetch, requests } = jsonFetch(
      toJson(
        CheckPolicyResponseSchema,
        create(CheckPolicyResponseSchema, {
          decision: Decision.ALLOW,
          allowed: true,
          decisionId: "dec_2",
          policyVersion: "v1",
          reason: DecisionReason.POLICY,
          policyVersions: { test: "v1" },
          evaluatedAt: { seconds: 1_700_000_000n, nanos: 0 },
          rateLimits: [{ limitId: "l/r/rpm", scope: "api_key", limit: 5, remaining: 4 }],
        }),
      ),
    );
    const client = new FulcrumClient({
      baseUrl: "https://e",
      apiKey: TEST_API_KEY,
      fetch,
      useBinaryFormat: false,
    });
    const decision = await client.check({ tools: ["x"] }, { policyId: "test" });
    expect(requests[0]?.url).toMatch(/PolicyService\/CheckPolicy$/);
    expect(requests[0]?.body).toEqual({ policyId: "test", context: { toolNames: ["x"] } });
    expect(decision).toMatchObject({
      decision: "ALLOW",
      allowed: true,
      decisionId: "dec_2",
      reason: "POLICY",
      policyVersions: { test: "v1" },
      evaluatedAtMs: 1_700_000_000_000,
      rateLimits: [{ limitId: "l/r/rpm", scope: "api_key", limit: 5, remaining: 4 }],
      retryAfterMs: undefined,
    });
    // Tenant-wide CheckPolicy: every evaluated policy's version.
    const all = routerCheck({ policyVersions: { a: "v1", b: "v7" }, decision: Decision.DENY });
    expect((await all.check()).policyVersions).toEqual({ a: "v1", b: "v7" });
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
      reason: "POLICY",
      rateLimits: [],
      failedOpen: false,
      failedClosed: false,
    });
    expect(decision.retryAfterMs).toBeUndefined();
    expect(decision.failureMode).toBeUndefined();
    expect(decision.error).toBeUndefined();
    expect(decision.latencyMs).toBeGreaterThanOrEqual(0);
  });

  it("maps a rate-limited DENY: every counter, and retryAfterMs over the exceeded ones", async () => {
    const decision = await routerClient(() => rateLimitedResponse).evaluate({ workflowId: "w" });
    expect(decision).toMatchObject({
      decision: "DENY",
      allowed: false,
      reason: "RATE_LIMITED",
      retryAfterMs: 1500,
      failedOpen: false,
      failedClosed: false,
    });
    expect(decision.rateLimits).toEqual([
      {
        limitId: "limits/per-workflow/requests_per_minute",
        scope: "workflow",
        subject: "support-bot",
        unit: "requests",
        limit: 10,
        remaining: 0,
        resetAt: new Date(1_700_000_060_000),
        retryAfterMs: 1500,
        exceeded: true,
        failed: false,
      },
      {
        limitId: "limits/tenant/tokens_per_minute",
        scope: "tenant",
        subject: "",
        unit: "tokens",
        limit: 100_000,
        remaining: 98_800,
        resetAt: undefined,
        retryAfterMs: 0,
        exceeded: false,
        failed: false,
      },
    ]);
  });

  it("retryAfterMs is the largest wait, from resetAt when a limit gives no retry_after_ms", async () => {
    const inFiveSeconds = BigInt(Math.ceil((Date.now() + 5000) / 1000));
    const decision = await routerClient(() => ({
      result: {
        decision: Decision.DENY,
        reason: DecisionReason.RATE_LIMITED,
        rateLimits: [
          { limitId: "a", exceeded: true, retryAfterMs: 800 },
          { limitId: "b", exceeded: true, resetAt: { seconds: inFiveSeconds } },
          { limitId: "c", exceeded: false, retryAfterMs: 60_000 },
        ],
      },
    })).evaluate({});
    expect(decision.retryAfterMs).toBeGreaterThan(3000);
    expect(decision.retryAfterMs).toBeLessThanOrEqual(6000);
  });

  it("maps NO_ACTIVE_POLICIES, a server-side FAIL_CLOSED and reasons it does not know", async () => {
    const none = routerClient(() => ({
      result: { decision: Decision.ALLOW, reason: DecisionReason.NO_ACTIVE_POLICIES },
    }));
    expect(await none.evaluate({})).toMatchObject({ reason: "NO_ACTIVE_POLICIES", allowed: true });

    // Redis behind a rate limit failed and the limit is FAIL_CLOSED: the edge answered,
    // so this is not a synthetic decision (failedClosed stays false).
    const closed = await routerClient(() => ({
      decisionId: "dec_fc",
      result: {
        decision: Decision.DENY,
        reason: DecisionReason.FAIL_CLOSED,
        failureMode: {
          component: "rate_limit",
          mode: FailureMode.FAIL_CLOSED,
          message: "redis: connection refused",
        },
        rateLimits: [{ limitId: "l", failed: true }],
      },
    })).evaluate({});
    expect(closed).toMatchObject({
      decision: "DENY",
      reason: "FAIL_CLOSED",
      failureMode: {
        component: "rate_limit",
        mode: "FAIL_CLOSED",
        message: "redis: connection refused",
      },
      rateLimits: [{ limitId: "l", failed: true, exceeded: false }],
      retryAfterMs: undefined,
      failedClosed: false,
      failedOpen: false,
      decisionId: "dec_fc",
    });
    const open = await routerClient(() => ({
      result: {
        decision: Decision.ALLOW,
        reason: DecisionReason.POLICY,
        failureMode: { component: "rate_limit", mode: FailureMode.FAIL_OPEN },
      },
    })).evaluate({});
    expect(open).toMatchObject({
      allowed: true,
      reason: "POLICY",
      failureMode: { mode: "FAIL_OPEN" },
      failedOpen: false,
    });

    expect(
      (await routerClient(() => ({ result: { decision: Decision.ALLOW } })).evaluate({})).reason,
    ).toBe("");
    const future = routerClient(() => ({ result: { decision: Decision.DENY, reason: 9 } }));
    expect((await future.evaluate({})).reason).toBe("9");
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
            reason: DecisionReason.RATE_LIMITED,
            rateLimits: [{ limitId: "l", exceeded: true, retryAfterMs: 250 }],
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
    const client = new FulcrumClient({ baseUrl: "x", apiKey: TEST_API_KEY, transport });
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
      reason: "RATE_LIMITED",
      retryAfterMs: 250,
    });
    expect(many.results.map((r) => [r.policyId, r.decision, r.policyName])).toEqual([
      ["pol_a", "ALLOW", ""],
      ["pol_b", "DENY", "Models"],
    ]);
  });
});

/** A client whose CheckPolicy answers `response`, in memory. */
function routerCheck(response: Record<string, unknown>) {
  const transport = createRouterTransport(({ service }) => {
    service(PolicyService, { checkPolicy: () => response as never });
  });
  return new FulcrumClient({ baseUrl: "x", apiKey: TEST_API_KEY, transport });
}
