import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { ActionType, Decision, Phase } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { workerClient } from "./client.js";

// The Worker serves policies/fixtures/tenants.json (no TENANT_CONFIGS set).
const policies = workerClient(PolicyService);
const binaryPolicies = workerClient(PolicyService, true);

const demo = (fields: Record<string, unknown> = {}) => ({ tenantId: "demo", ...fields });

describe("EvaluatePolicy", () => {
  it("denies a tool on the deny list and says which rule matched", async () => {
    const { result, decisionId } = await policies.evaluatePolicy({
      policyId: "pol_safe_tools",
      context: demo({ toolNames: ["search", "shell_exec"], phase: Phase.PRE_TOOL_CALL }),
    });
    expect(result?.decision).toBe(Decision.DENY);
    expect(result?.policyId).toBe("pol_safe_tools");
    expect(result?.policyVersion).toBe("v1");
    expect(result?.matchedRules.map((r) => r.ruleId)).toEqual(["no_shell"]);
    expect(result?.reasons.join(" ")).toContain("shell_exec");
    expect(result?.actions.map((a) => a.type)).toContain(ActionType.DENY);
    expect(result?.evaluatedAt).toBeDefined();
    expect(decisionId).toMatch(/^dec_/);
  });

  it("requires approval for a tool matching an approval glob, over binary protobuf too", async () => {
    const { result } = await binaryPolicies.evaluatePolicy({
      policyId: "pol_safe_tools",
      context: demo({ toolNames: ["delete_customer"] }),
    });
    expect(result?.decision).toBe(Decision.REQUIRE_APPROVAL);
    expect(result?.matchedRules.map((r) => r.ruleId)).toEqual(["approve_deletes"]);
  });

  it("allows a call no rule matches", async () => {
    const { result } = await policies.evaluatePolicy({
      policyId: "pol_safe_tools",
      context: demo({ toolNames: ["search"] }),
    });
    expect(result?.decision).toBe(Decision.ALLOW);
    expect(result?.matchedRules).toEqual([]);
  });

  it("with no policy id evaluates every active policy and the strongest decision wins", async () => {
    const { result } = await policies.evaluatePolicy({
      context: demo({ modelId: "gpt-4o-mini", inputText: "here is my api_key" }),
    });
    // pol_pii runs under WARN enforcement; the draft RBAC policy is not active.
    expect(result?.decision).toBe(Decision.WARN);
    expect(result?.matchedRules.map((r) => r.policyId)).toEqual(["pol_pii"]);

    const denied = await policies.evaluatePolicy({
      context: demo({ modelId: "llama-3", inputText: "here is my api_key" }),
    });
    expect(denied.result?.decision).toBe(Decision.DENY);
    expect(new Set(denied.result?.matchedRules.map((r) => r.policyId))).toEqual(
      new Set(["pol_models", "pol_pii"]),
    );
  });

  it("in dry run answers ALLOW and reports what it would have decided", async () => {
    const { result } = await policies.evaluatePolicy({
      policyId: "pol_models",
      dryRun: true,
      context: demo({ modelId: "llama-3" }),
    });
    expect(result?.decision).toBe(Decision.ALLOW);
    expect(result?.dryRun).toBe(true);
    expect(result?.wouldDecide).toBe(Decision.DENY);
  });

  it("evaluates a named draft policy, which is how drafts are tried out", async () => {
    const { result } = await policies.evaluatePolicy({
      policyId: "pol_draft_rbac",
      context: demo({ toolNames: ["deploy_prod"], userRoles: ["developer"] }),
    });
    expect(result?.dryRun).toBe(true);
    expect(result?.wouldDecide).toBe(Decision.DENY);
    expect(result?.decision).toBe(Decision.ALLOW);
  });
});

describe("EvaluatePolicies", () => {
  it("returns one result per policy in request order and a final decision", async () => {
    const response = await policies.evaluatePolicies({
      policyIds: ["pol_pii", "pol_models", "pol_safe_tools"],
      context: demo({ modelId: "llama-3", toolNames: ["delete_x"], estimatedCostUsd: 2 }),
    });
    expect(response.results.map((r) => r.policyId)).toEqual([
      "pol_pii",
      "pol_models",
      "pol_safe_tools",
    ]);
    expect(response.results.map((r) => r.decision)).toEqual([
      Decision.ALLOW,
      Decision.DENY,
      Decision.REQUIRE_APPROVAL,
    ]);
    expect(response.finalDecision).toBe(Decision.DENY);
    expect(response.results[1]?.matchedRules.map((r) => r.ruleId).sort()).toEqual([
      "allowed_models",
      "cost_cap",
    ]);
  });

  it("stops after the first DENY when asked to", async () => {
    const response = await policies.evaluatePolicies({
      policyIds: ["pol_models", "pol_safe_tools"],
      stopOnDeny: true,
      context: demo({ modelId: "llama-3", toolNames: ["delete_x"] }),
    });
    expect(response.results.map((r) => r.policyId)).toEqual(["pol_models"]);
    expect(response.finalDecision).toBe(Decision.DENY);
  });

  it("names every policy that does not exist", async () => {
    const error = await policies
      .evaluatePolicies({ policyIds: ["pol_models", "nope", "gone"], context: demo() })
      .catch((e) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.NotFound);
    expect((error as ConnectError).rawMessage).toContain('"nope", "gone"');
  });
});

describe("CheckPolicy", () => {
  it("answers the runbook's load-test request", async () => {
    const response = await policies.checkPolicy({ tenantId: "test", policyId: "test" });
    expect(response.decision).toBe(Decision.ALLOW);
    expect(response.allowed).toBe(true);
    expect(response.policyVersion).toBe("v1");
    expect(response.decisionId).toMatch(/^dec_/);
  });

  it("denies with the reasons when a rule matches", async () => {
    const response = await policies.checkPolicy({
      tenantId: "test",
      policyId: "test",
      context: { inputText: "password: hunter2" },
    });
    expect(response.decision).toBe(Decision.DENY);
    expect(response.allowed).toBe(false);
    expect(response.matchedRules.map((r) => r.ruleId)).toEqual(["secrets"]);
    expect(response.reasons.length).toBe(1);
  });

  it("refuses a context that names another tenant", async () => {
    const error = await policies
      .checkPolicy({ tenantId: "test", policyId: "test", context: { tenantId: "demo" } })
      .catch((e) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toContain("context.tenant_id");
  });
});
