import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { CostService } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { Decision } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { type ApiKeyOption, grpcWebClient, postJson, workerClient } from "./client.js";
import { seed } from "./seed.js";

const CHECK = "fulcrum.policy.v1.PolicyService/CheckPolicy";
const EVALUATE = "fulcrum.policy.v1.PolicyService/EvaluatePolicy";
const { tenantId, otherTenantId, checkKey, manageKey, expiredKey, unknownKey } = seed();

/** The ConnectError `call` fails with (fails the test when it succeeds). */
async function failure(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  expect(outcome, "expected the call to fail").toBeInstanceOf(ConnectError);
  return outcome as ConnectError;
}

const policies = (apiKey: ApiKeyOption) => workerClient(PolicyService, { apiKey });
const check = (apiKey: ApiKeyOption) => policies(apiKey).checkPolicy({});

describe("API-key authentication at the Worker", () => {
  it("no key is Unauthenticated, naming x-api-key (HTTP 401 in Connect JSON)", async () => {
    const error = await failure(check(null));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.rawMessage).toContain("x-api-key");

    const response = await postJson(CHECK, "{}", { "x-api-key": null });
    expect(response.status).toBe(401);
    expect(await response.json()).toEqual({
      code: "unauthenticated",
      message: expect.stringContaining("x-api-key"),
    });
  });

  it("a malformed key is Unauthenticated and never echoed", async () => {
    const malformed = `fk_${"x".repeat(10)}-secret-looking`;
    const error = await failure(check(malformed));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.rawMessage).toContain("does not hold a Fulcrum API key");
    expect(error.rawMessage).not.toContain(malformed);
  });

  it("a well-formed key with no record is Unauthenticated", async () => {
    const error = await failure(check(unknownKey));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.rawMessage).toMatch(/unknown or revoked/);
    expect(error.rawMessage).not.toContain(unknownKey);
  });

  it("an expired key is Unauthenticated, saying when it expired", async () => {
    const error = await failure(check(expiredKey));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.rawMessage).toContain("expired at 2020-01-01T00:00:00Z");
  });

  it("a manage-only key is PermissionDenied (HTTP 403), naming the check scope", async () => {
    const error = await failure(check(manageKey));
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.rawMessage).toContain("check scope");

    const response = await postJson(CHECK, "{}", { "x-api-key": manageKey });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { code: string }).code).toBe("permission_denied");
  });

  it("the check key passes, as x-api-key or as Authorization: Bearer", async () => {
    const viaHeader = await check(checkKey);
    expect(viaHeader.decision).toBe(Decision.ALLOW);
    const viaBearer = await postJson(CHECK, "{}", {
      "x-api-key": null,
      authorization: `Bearer ${checkKey}`,
    });
    expect(viaBearer.status).toBe(200);
    expect(((await viaBearer.json()) as { decision: string }).decision).toBe("DECISION_ALLOW");
  });

  it("is the same over gRPC-web", async () => {
    const none = await failure(grpcWebClient(PolicyService, { apiKey: null }).checkPolicy({}));
    expect(none.code).toBe(Code.Unauthenticated);
    const ok = await grpcWebClient(PolicyService).checkPolicy({});
    expect(ok.decision).toBe(Decision.ALLOW);
  });

  it("comes before validation: an invalid request without a key says only Unauthenticated", async () => {
    const error = await failure(
      policies(null).evaluatePolicy({ policyId: "no spaces allowed", context: {} }),
    );
    expect(error.code).toBe(Code.Unauthenticated);
    expect(error.rawMessage).not.toContain("policy_id");
  });

  it("comes after the fetch-level checks: malformed JSON without a key is InvalidArgument", async () => {
    const response = await postJson(EVALUATE, '{"context": {', { "x-api-key": null });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe("invalid_argument");
  });

  it("guards methods of later issues too", async () => {
    const client = (apiKey: ApiKeyOption) => workerClient(CostService, { apiKey });
    const none = await failure(client(null).getBudget({ budgetId: "budget_1" }));
    expect(none.code).toBe(Code.Unauthenticated);
    const keyed = await failure(client(checkKey).getBudget({ budgetId: "budget_1" }));
    expect(keyed.code).toBe(Code.Unimplemented);
  });
});

describe("the tenant comes from the key", () => {
  const client = policies(checkKey);

  it("a tenant_id naming another tenant is PermissionDenied, top level or in the context", async () => {
    const topLevel = await failure(client.checkPolicy({ tenantId: otherTenantId }));
    expect(topLevel.code).toBe(Code.PermissionDenied);
    expect(topLevel.rawMessage).toContain("another tenant");

    const inContext = await failure(
      client.evaluatePolicy({ context: { tenantId: otherTenantId } }),
    );
    expect(inContext.code).toBe(Code.PermissionDenied);

    const inCheckContext = await failure(
      client.checkPolicy({ tenantId, context: { tenantId: otherTenantId } }),
    );
    expect(inCheckContext.code).toBe(Code.PermissionDenied);
  });

  it("naming the key's own tenant is allowed", async () => {
    const response = await client.checkPolicy({ tenantId, context: { tenantId } });
    expect(response.decision).toBe(Decision.ALLOW);
  });
});

describe("decisions from the seeded tenant's compiled policies", () => {
  const client = policies(checkKey);
  const risky = { toolNames: ["delete_db", "pay"], inputText: "a long prompt" };

  it("EvaluatePolicy with no policy_id combines every active policy", async () => {
    const { result, decisionId } = await client.evaluatePolicy({ context: risky });
    expect(decisionId).toMatch(/^dec_[0-9a-f-]{36}$/);
    expect(result?.decision).toBe(Decision.DENY);
    expect(result?.reasons).toEqual([
      "deletes are blocked (rule no-delete of policy deletes)",
      "large prompt (rule big of policy deletes)",
      "payments need approval (rule pay of policy payments)",
      "tool call seen (rule seen of policy payments)",
    ]);
    expect(result?.metadata).toEqual({
      "policy_version.deletes": "2",
      "policy_version.payments": "1",
    });
    expect(result?.message).toBe("2 active policies evaluated");
  });

  it("EvaluatePolicy of one policy answers that policy's verdict", async () => {
    const { result } = await client.evaluatePolicy({ policyId: "payments", context: risky });
    expect(result?.decision).toBe(Decision.REQUIRE_APPROVAL);
    expect(result?.policyId).toBe("payments");
    expect(result?.policyName).toBe("Payments");
    expect(result?.policyVersion).toBe("1");
  });

  it("EvaluatePolicies answers per policy in the named order", async () => {
    const response = await client.evaluatePolicies({
      policyIds: ["payments", "deletes"],
      context: risky,
    });
    expect(response.results.map((r) => [r.policyId, r.decision])).toEqual([
      ["payments", Decision.REQUIRE_APPROVAL],
      ["deletes", Decision.DENY],
    ]);
    expect(response.finalDecision).toBe(Decision.DENY);
  });

  it("CheckPolicy allows what no policy objects to", async () => {
    const quiet = await client.checkPolicy({ context: { toolNames: ["search"] } });
    expect(quiet.decision).toBe(Decision.ALLOW);
    expect(quiet.allowed).toBe(true);
    expect(quiet.reasons).toEqual(["tool call seen (rule seen of policy payments)"]);
    expect(quiet.policyVersions).toEqual({ deletes: "2", payments: "1" });

    const pay = await client.checkPolicy({ policyId: "payments", context: { toolNames: ["pay"] } });
    expect(pay.decision).toBe(Decision.REQUIRE_APPROVAL);
    expect(pay.allowed).toBe(false);
    expect(pay.policyVersion).toBe("1");
  });

  it("a dry run answers ALLOW but reports what would be decided", async () => {
    const { result } = await client.evaluatePolicy({ context: risky, dryRun: true });
    expect(result?.decision).toBe(Decision.ALLOW);
    expect(result?.wouldDecide).toBe(Decision.DENY);
  });

  it("a policy that fails to evaluate is Internal, never an ALLOW", async () => {
    const error = await failure(
      client.evaluatePolicy({ context: { attributes: { trap: "yes" } } }),
    );
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).toMatch(/^internal error/);
  });
});
