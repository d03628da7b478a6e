import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { beforeAll, describe, expect, it } from "vitest";
import { ActionSchema, ActionType } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { RuleSchema } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { edgeUrl, newTenant } from "../harness/e2e-stack.js";
import { toolRule } from "../harness/policy-fixtures.js";

/**
 * `buf curl` is a client nobody here wrote: it reads the schema from proto/
 * and speaks each protocol from its own implementation. The calls run as a
 * tenant made through the management API, with its check key as `x-api-key`.
 */
const root = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);

let key = "";
let policyId = "";
let otherTenantId = "";
let otherPolicyId = "";

beforeAll(async () => {
  const t = await newTenant("buf-curl");
  const rule = toolRule("shell_run");
  ({ policyId } = await t.activate({
    rules: [
      create(RuleSchema, {
        ...rule,
        ruleId: "no-shell",
        actions: [create(ActionSchema, { type: ActionType.DENY, message: "shell_run is blocked" })],
      }),
    ],
  }));
  ({ key } = await t.newKey());
  const other = await newTenant("buf-curl-other");
  otherTenantId = other.tenantId;
  otherPolicyId = (await other.activate({ rules: [toolRule("shell_run")] })).policyId;
}, 60_000);

async function bufCurl(
  protocol: "connect" | "grpcweb",
  procedure: string,
  data: object,
  apiKey: string | null = key,
) {
  // buf's npm shim, under the Node running the tests (npx would add npm's own warnings).
  const { stdout } = await run(
    process.execPath,
    [
      join(root, "node_modules/@bufbuild/buf/bin/buf"),
      "curl",
      "--schema",
      "proto",
      "--protocol",
      protocol,
      ...(apiKey === null ? [] : ["-H", `x-api-key: ${apiKey}`]),
      "--data",
      JSON.stringify(data),
      `${edgeUrl()}/${procedure}`,
    ],
    { cwd: root, timeout: 30_000 },
  );
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function bufCurlError(
  protocol: "connect" | "grpcweb",
  procedure: string,
  data: object,
  apiKey: string | null = key,
) {
  try {
    await bufCurl(protocol, procedure, data, apiKey);
  } catch (error) {
    return JSON.parse((error as { stderr: string }).stderr) as { code: string; message: string };
  }
  throw new Error("expected buf curl to fail");
}

const CHECK = "fulcrum.policy.v1.PolicyService/CheckPolicy";
const EVALUATE = "fulcrum.policy.v1.PolicyService/EvaluatePolicy";

describe.each(["connect", "grpcweb"] as const)("buf curl --protocol %s", (protocol) => {
  it("checks the grpc health service without a key", async () => {
    const response = await bufCurl(protocol, "grpc.health.v1.Health/Check", {}, null);
    expect(response).toEqual({ status: "SERVING" });
  });

  it("runs a CheckPolicy load-test request against the tenant's policy", async () => {
    const response = await bufCurl(protocol, CHECK, { policy_id: policyId });
    expect(response.decision).toBe("DECISION_ALLOW");
    expect(response.allowed).toBe(true);
    expect(response.decisionId).toMatch(/^dec_/);
    expect(response.policyVersion).toBe("1");
  });

  it("gets a DENY with matched rules from EvaluatePolicy", async () => {
    const response = await bufCurl(protocol, EVALUATE, {
      policy_id: policyId,
      context: { tool_names: ["shell_run"] },
    });
    const result = response.result as Record<string, unknown>;
    expect(result.decision).toBe("DECISION_DENY");
    expect(result.policyId).toBe(policyId);
    expect((result.matchedRules as { ruleId: string }[])[0]?.ruleId).toBe("no-shell");
  });

  it("is refused Unauthenticated without a key", async () => {
    const error = await bufCurlError(protocol, CHECK, { policy_id: policyId }, null);
    expect(error.code).toBe("unauthenticated");
  });

  it("is refused PermissionDenied naming another tenant", async () => {
    const error = await bufCurlError(protocol, CHECK, { tenant_id: otherTenantId });
    expect(error.code).toBe("permission_denied");
  });

  it("gets NotFound for a policy that is not active for the tenant (another tenant's)", async () => {
    const error = await bufCurlError(protocol, EVALUATE, { policy_id: otherPolicyId, context: {} });
    expect(error.code).toBe("not_found");
    expect(error.message).toContain("is not active");
  });

  it("gets InvalidArgument naming the invalid field", async () => {
    const error = await bufCurlError(protocol, EVALUATE, {
      context: { user_roles: Array(65).fill("r") },
    });
    expect(error.code).toBe("invalid_argument");
    expect(error.message).toContain("context.user_roles");
  });
});
