import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { describe, expect, inject, it } from "vitest";
import { Decision } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../proto/gen/grpc/health/v1/health_pb.js";

const baseUrl = inject("edgeUrl");

const transports: Record<string, Transport> = {
  "Connect JSON": createConnectTransport({ baseUrl }),
  "Connect binary": createConnectTransport({ baseUrl, useBinaryFormat: true }),
  "gRPC-web binary": createGrpcWebTransport({ baseUrl, useBinaryFormat: true }),
  "gRPC-web JSON": createGrpcWebTransport({ baseUrl, useBinaryFormat: false }),
};

describe.each(Object.entries(transports))("the running Worker over %s", (_name, transport) => {
  const policies = createClient(PolicyService, transport);

  it("answers Health/Check SERVING", async () => {
    const response = await createClient(Health, transport).check({});
    expect(response.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it("evaluates a policy with the full decision record", async () => {
    const { result, decisionId } = await policies.evaluatePolicy({
      policyId: "pol_safe_tools",
      context: { tenantId: "demo", toolNames: ["shell_run"] },
    });
    expect(result?.decision).toBe(Decision.DENY);
    expect(result?.matchedRules[0]?.ruleId).toBe("no_shell");
    expect(result?.reasons[0]).toContain("shell_run");
    expect(result?.policyVersion).toBe("v1");
    expect(result?.evaluationDurationMs).toBeGreaterThanOrEqual(0);
    expect(decisionId).toMatch(/^dec_/);
  });

  it("combines all active policies when no policy is named", async () => {
    const response = await policies.checkPolicy({
      tenantId: "demo",
      context: { tenantId: "demo", modelId: "claude-x", toolNames: ["delete_all"] },
    });
    expect(response.decision).toBe(Decision.REQUIRE_APPROVAL);
    expect(response.allowed).toBe(false);
  });

  it("refuses invalid input with InvalidArgument naming the field", async () => {
    const error = await policies
      .evaluatePolicy({ context: { tenantId: "demo", userRoles: Array(65).fill("r") } })
      .catch((e) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toContain("context.user_roles");
  });

  it("says NotFound for an unknown policy", async () => {
    const error = await policies
      .evaluatePolicy({ policyId: "missing", context: { tenantId: "demo" } })
      .catch((e) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.NotFound);
  });
});

describe("plain HTTP against the running Worker", () => {
  it("serves GET /healthz as JSON", async () => {
    const response = await fetch(`${baseUrl}/healthz`);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { status: string }).status).toBe("healthy");
  });

  it("refuses a body over 1 MiB with InvalidArgument", async () => {
    const response = await fetch(`${baseUrl}/fulcrum.policy.v1.PolicyService/EvaluatePolicy`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ context: { tenant_id: "demo", input_text: "x".repeat(1_200_000) } }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe("invalid_argument");
  });
});
