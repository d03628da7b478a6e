import { create, toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { describe, expect, it, vi } from "vitest";
import {
  ActionType,
  Decision,
  RuleType,
  Severity,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  type EvaluatePolicyRequest,
  EvaluatePolicyResponseSchema,
  PolicyService,
} from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { FulcrumClient, FulcrumError } from "./index.js";

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

/** A fetch answering Connect JSON, recording each request. */
function jsonFetch(body: unknown, status = 200) {
  const requests: { url: string; headers: Headers; body: unknown }[] = [];
  const fetch = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    requests.push({
      url: String(input),
      headers: new Headers(init?.headers),
      body: JSON.parse(
        init?.body instanceof Uint8Array ? new TextDecoder().decode(init.body) : String(init?.body),
      ),
    });
    return new Response(JSON.stringify(body), {
      status,
      headers: { "content-type": "application/json" },
    });
  });
  return { fetch: fetch as unknown as typeof globalThis.fetch, requests };
}

/** A fetch that never answers; it rejects only when the call is aborted. */
const hangingFetch = ((_input: RequestInfo | URL, init?: RequestInit) =>
  new Promise((_resolve, reject) => {
    init?.signal?.addEventListener("abort", () => reject(init.signal?.reason));
  })) as typeof globalThis.fetch;

const refusedFetch = (async () => {
  throw new TypeError("fetch failed", { cause: new Error("connect ECONNREFUSED 127.0.0.1:1") });
}) as typeof globalThis.fetch;

function connectErrorFetch(code: string, status: number) {
  return jsonFetch({ code, message: `server says ${code}` }, status).fetch;
}

function routerClient(
  evaluatePolicy: (req: EvaluatePolicyRequest) => unknown,
  failureMode: "FAIL_OPEN" | "FAIL_CLOSED" = "FAIL_CLOSED",
) {
  const transport = createRouterTransport(({ service }) => {
    service(PolicyService, {
      evaluatePolicy: evaluatePolicy as never,
    });
  });
  return new FulcrumClient({ baseUrl: "http://unused", transport, failureMode, tenantId: "demo" });
}

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

describe("failure modes", () => {
  const modes = [
    ["FAIL_OPEN", "ALLOW", true],
    ["FAIL_CLOSED", "DENY", false],
  ] as const;

  it.each(modes)("%s: a timeout becomes a synthetic %s", async (failureMode, verdict, allowed) => {
    const client = new FulcrumClient({
      baseUrl: "https://e",
      fetch: hangingFetch,
      failureMode,
      timeoutMs: 50,
    });
    const started = Date.now();
    const decision = await client.evaluate({ tools: ["x"] });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(decision).toMatchObject({
      decision: verdict,
      allowed,
      decisionId: "",
      failedOpen: failureMode === "FAIL_OPEN",
      failedClosed: failureMode === "FAIL_CLOSED",
    });
    expect(decision.error).toBeInstanceOf(FulcrumError);
    expect(decision.error?.code).toBe("DeadlineExceeded");
    expect(decision.reasons[0]).toContain(failureMode);
    expect(decision.latencyMs).toBeGreaterThanOrEqual(45);
  });

  it.each(modes)("%s: a network error becomes a synthetic %s", async (failureMode, verdict) => {
    const client = new FulcrumClient({ baseUrl: "https://e", fetch: refusedFetch, failureMode });
    const decision = await client.evaluate({});
    expect(decision.decision).toBe(verdict);
    expect(decision.error?.code).toBe("Unknown");
    expect(decision.error?.message).toContain("fetch failed");
  });

  it.each([
    ["unavailable", 503],
    ["internal", 500],
    ["deadline_exceeded", 504],
  ])("FAIL_OPEN: a %s answer (HTTP %i) fails open", async (code, status) => {
    const client = new FulcrumClient({
      baseUrl: "https://e",
      fetch: connectErrorFetch(code, status),
      failureMode: "FAIL_OPEN",
      useBinaryFormat: false,
    });
    expect(await client.evaluate({})).toMatchObject({ decision: "ALLOW", failedOpen: true });
  });

  it("a 502 from a proxy (not a Connect error body) fails closed", async () => {
    const fetch = (async () =>
      new Response("<html>bad gateway</html>", {
        status: 502,
        headers: { "content-type": "text/html" },
      })) as typeof globalThis.fetch;
    const client = new FulcrumClient({ baseUrl: "https://e", fetch });
    const decision = await client.evaluate({});
    expect(decision).toMatchObject({ decision: "DENY", failedClosed: true });
    expect(decision.error?.code).toBe("Unavailable");
  });

  it("the default failure mode is FAIL_CLOSED and the default timeout 500 ms", () => {
    const client = new FulcrumClient({ baseUrl: "https://e" });
    expect(client.failureMode).toBe("FAIL_CLOSED");
    expect(client.timeoutMs).toBe(500);
  });

  it.each([
    ["invalid_argument", 400, "InvalidArgument"],
    ["unauthenticated", 401, "Unauthenticated"],
    ["permission_denied", 403, "PermissionDenied"],
    ["not_found", 404, "NotFound"],
    ["unimplemented", 404, "Unimplemented"],
    ["resource_exhausted", 429, "ResourceExhausted"],
    ["failed_precondition", 400, "FailedPrecondition"],
  ])("FAIL_OPEN does not swallow %s: it throws FulcrumError", async (code, status, name) => {
    const client = new FulcrumClient({
      baseUrl: "https://e",
      fetch: connectErrorFetch(code, status),
      failureMode: "FAIL_OPEN",
      useBinaryFormat: false,
    });
    const error = await client.evaluate({}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FulcrumError);
    expect((error as FulcrumError).code).toBe(name);
    expect((error as FulcrumError).transportFailure).toBe(false);
    expect((error as FulcrumError).message).toBe(`server says ${code}`);
  });

  it("a wrong base URL (plain 404) throws rather than failing open", async () => {
    const fetch = (async () =>
      new Response("not found", { status: 404 })) as typeof globalThis.fetch;
    const client = new FulcrumClient({ baseUrl: "https://e", fetch, failureMode: "FAIL_OPEN" });
    await expect(client.evaluate({})).rejects.toMatchObject({ code: "Unimplemented" });
  });

  it("a call the caller cancels throws Canceled in either mode", async () => {
    const client = new FulcrumClient({
      baseUrl: "https://e",
      fetch: hangingFetch,
      failureMode: "FAIL_OPEN",
    });
    const controller = new AbortController();
    const pending = client.evaluate({}, { signal: controller.signal });
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: "FulcrumError", code: "Canceled" });
  });

  it("the per-call timeout overrides the client's", async () => {
    const client = new FulcrumClient({
      baseUrl: "https://e",
      fetch: hangingFetch,
      timeoutMs: 60_000,
    });
    const decision = await client.evaluate({}, { timeoutMs: 20 });
    expect(decision).toMatchObject({ failedClosed: true, error: { code: "DeadlineExceeded" } });
  });

  it("wraps errors from a router transport the same way", async () => {
    const client = routerClient(() => {
      throw new ConnectError("down", Code.Unavailable);
    }, "FAIL_OPEN");
    expect(await client.evaluate({})).toMatchObject({ failedOpen: true });
    const invalid = routerClient(() => {
      throw new ConnectError("context.tenant_id: value is required", Code.InvalidArgument);
    }, "FAIL_OPEN");
    await expect(invalid.evaluate({})).rejects.toMatchObject({
      code: "InvalidArgument",
      message: "context.tenant_id: value is required",
    });
  });
});

describe("configuration mistakes are loud", () => {
  it("refuses a bad failure mode, timeout or phase", async () => {
    expect(() => new FulcrumClient({ baseUrl: "x", failureMode: "OPEN" as "FAIL_OPEN" })).toThrow(
      /failureMode/,
    );
    expect(() => new FulcrumClient({ baseUrl: "x", timeoutMs: 0 })).toThrow(/timeoutMs/);
    expect(() => new FulcrumClient({ baseUrl: "" })).toThrow(/baseUrl/);
    const client = new FulcrumClient({ baseUrl: "x", fetch: refusedFetch });
    await expect(client.evaluate({ phase: "LATER" as "PRE_EXECUTION" })).rejects.toThrow(
      /unknown phase/,
    );
  });

  it("refuses an api key with a custom transport (it could not be applied)", () => {
    const transport = createRouterTransport(() => {});
    expect(() => new FulcrumClient({ baseUrl: "x", apiKey: "k", transport })).toThrow(
      /apiKeyInterceptor/,
    );
  });
});
