import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, inject, it } from "vitest";

/**
 * `buf curl` is a client nobody here wrote: it reads the schema from proto/
 * and speaks each protocol from its own implementation.
 */
const baseUrl = inject("edgeUrl");
const root = join(import.meta.dirname, "..", "..");
const run = promisify(execFile);

async function bufCurl(protocol: "connect" | "grpcweb", procedure: string, data: object) {
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
      "--data",
      JSON.stringify(data),
      `${baseUrl}/${procedure}`,
    ],
    { cwd: root, timeout: 30_000 },
  );
  return JSON.parse(stdout) as Record<string, unknown>;
}

async function bufCurlError(protocol: "connect" | "grpcweb", procedure: string, data: object) {
  try {
    await bufCurl(protocol, procedure, data);
  } catch (error) {
    return JSON.parse((error as { stderr: string }).stderr) as { code: string; message: string };
  }
  throw new Error("expected buf curl to fail");
}

describe.each(["connect", "grpcweb"] as const)("buf curl --protocol %s", (protocol) => {
  it("checks the grpc health service", async () => {
    const response = await bufCurl(protocol, "grpc.health.v1.Health/Check", {});
    expect(response).toEqual({ status: "SERVING" });
  });

  it("runs the runbook's CheckPolicy load-test request", async () => {
    const response = await bufCurl(protocol, "fulcrum.policy.v1.PolicyService/CheckPolicy", {
      tenant_id: "test",
      policy_id: "test",
    });
    expect(response.decision).toBe("DECISION_ALLOW");
    expect(response.allowed).toBe(true);
    expect(response.decisionId).toMatch(/^dec_/);
  });

  it("gets a DENY with matched rules from EvaluatePolicy", async () => {
    const response = await bufCurl(protocol, "fulcrum.policy.v1.PolicyService/EvaluatePolicy", {
      policy_id: "pol_models",
      context: { tenant_id: "demo", model_id: "llama-3" },
    });
    const result = response.result as Record<string, unknown>;
    expect(result.decision).toBe("DECISION_DENY");
    expect((result.matchedRules as { ruleId: string }[])[0]?.ruleId).toBe("allowed_models");
  });

  it("gets InvalidArgument naming the missing field", async () => {
    const error = await bufCurlError(protocol, "fulcrum.policy.v1.PolicyService/EvaluatePolicy", {
      context: {},
    });
    expect(error.code).toBe("invalid_argument");
    expect(error.message).toContain("context.tenant_id");
  });
});
