import { create } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { beforeAll, describe, expect, it } from "vitest";
import {
  ActionSchema,
  ActionType,
  Decision,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { type Rule, RuleSchema } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../proto/gen/grpc/health/v1/health_pb.js";
import { edgeUrl, newTenant } from "../harness/e2e-stack.js";
import { toolRule } from "../harness/policy-fixtures.js";

/**
 * The generated Connect client (connect-web's fetch transports) against the running
 * Worker, as a tenant made through the management API with its check key.
 */

/** The check key every call sends as `x-api-key` (undefined: none). */
let key = "";
let denyPolicy = "";
let approvePolicy = "";
let tenantId = "";
let otherTenantId = "";

function rule(ruleId: string, tool: string, type: ActionType): Rule {
  return create(RuleSchema, {
    ...toolRule(tool),
    ruleId,
    name: ruleId,
    actions: [create(ActionSchema, { type, message: `${tool}: ${ActionType[type]}` })],
  });
}

beforeAll(async () => {
  const t = await newTenant("connect-client");
  tenantId = t.tenantId;
  denyPolicy = (await t.activate({ rules: [rule("no-shell", "shell_run", ActionType.DENY)] }))
    .policyId;
  approvePolicy = (
    await t.activate({
      rules: [rule("approve-deletes", "delete_all", ActionType.REQUIRE_APPROVAL)],
    })
  ).policyId;
  key = (await t.newKey()).key;
  otherTenantId = (await newTenant("connect-client-other")).tenantId;
}, 60_000);

/** Sends `apiKey` as `x-api-key`; the tenant's check key unless told otherwise. */
const auth =
  (apiKey: () => string | undefined): Interceptor =>
  (next) =>
  (req) => {
    const k = apiKey();
    if (k !== undefined) req.header.set("x-api-key", k);
    return next(req);
  };
type KeyOf = () => string | undefined;
const transports: Record<string, (apiKey: KeyOf) => Transport> = {
  "Connect JSON": (k) => createConnectTransport({ baseUrl: edgeUrl(), interceptors: [auth(k)] }),
  "Connect binary": (k) =>
    createConnectTransport({ baseUrl: edgeUrl(), useBinaryFormat: true, interceptors: [auth(k)] }),
  "gRPC-web binary": (k) =>
    createGrpcWebTransport({ baseUrl: edgeUrl(), useBinaryFormat: true, interceptors: [auth(k)] }),
  "gRPC-web JSON": (k) =>
    createGrpcWebTransport({ baseUrl: edgeUrl(), useBinaryFormat: false, interceptors: [auth(k)] }),
};

/** The Connect error `call` failed with (fails the test when it succeeded). */
async function failure(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  expect(outcome, "expected the call to fail").toBeInstanceOf(ConnectError);
  return outcome as ConnectError;
}

describe.each(Object.entries(transports))("the running Worker over %s", (_name, transport) => {
  const policies = () =>
    createClient(
      PolicyService,
      transport(() => key),
    );

  it("answers Health/Check SERVING without a key", async () => {
    const response = await createClient(
      Health,
      transport(() => undefined),
    ).check({});
    expect(response.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
  });

  it("evaluates a policy with the full decision record", async () => {
    const { result, decisionId } = await policies().evaluatePolicy({
      policyId: denyPolicy,
      context: { toolNames: ["shell_run"] },
    });
    expect(result?.decision).toBe(Decision.DENY);
    expect(result?.policyId).toBe(denyPolicy);
    expect(result?.matchedRules[0]?.ruleId).toBe("no-shell");
    expect(result?.reasons[0]).toContain("shell_run");
    expect(result?.policyVersion).toBe("1");
    expect(result?.evaluationDurationMs).toBeGreaterThanOrEqual(0);
    expect(decisionId).toMatch(/^dec_/);
  });

  it("combines all active policies when no policy is named; accepts the key's own tenant id", async () => {
    const response = await policies().checkPolicy({
      tenantId,
      context: { tenantId, modelId: "claude-x", toolNames: ["delete_all"] },
    });
    expect(response.decision).toBe(Decision.REQUIRE_APPROVAL);
    expect(response.allowed).toBe(false);
    expect(Object.keys(response.policyVersions).sort()).toEqual([denyPolicy, approvePolicy].sort());
  });

  it("refuses invalid input with InvalidArgument naming the field", async () => {
    const error = await failure(
      policies().evaluatePolicy({ context: { userRoles: Array(65).fill("r") } }),
    );
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toContain("context.user_roles");
  });

  it("says NotFound for a policy that is not active", async () => {
    const error = await failure(policies().evaluatePolicy({ policyId: "missing", context: {} }));
    expect(error.code).toBe(Code.NotFound);
    expect(error.rawMessage).toContain("is not active");
  });

  it("says PermissionDenied for another tenant's id, in the request or the context", async () => {
    const named = await failure(policies().checkPolicy({ tenantId: otherTenantId }));
    expect(named.code).toBe(Code.PermissionDenied);
    const inContext = await failure(
      policies().evaluatePolicy({ context: { tenantId: otherTenantId } }),
    );
    expect(inContext.code).toBe(Code.PermissionDenied);
  });

  it("says Unauthenticated without a key, even for invalid input", async () => {
    const anonymous = createClient(
      PolicyService,
      transport(() => undefined),
    );
    const error = await failure(
      anonymous.evaluatePolicy({ context: { userRoles: Array(65).fill("r") } }),
    );
    expect(error.code).toBe(Code.Unauthenticated);
  });
});

describe("plain HTTP against the running Worker", () => {
  it("serves GET /healthz as JSON", async () => {
    const response = await fetch(`${edgeUrl()}/healthz`);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { status: string }).status).toBe("healthy");
  });

  it("refuses a body over 1 MiB with InvalidArgument, before authentication", async () => {
    const response = await fetch(`${edgeUrl()}/fulcrum.policy.v1.PolicyService/EvaluatePolicy`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ context: { input_text: "x".repeat(1_200_000) } }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe("invalid_argument");
  });
});
