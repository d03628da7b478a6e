import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { describe, expect, it } from "vitest";
import type { TenantConfig } from "../../core/policy/tenant-config.js";
import fixtureTenants from "../../policies/fixtures/tenants.json";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../proto/gen/grpc/health/v1/health_pb.js";
import { createEdgeApp } from "../src/app.js";
import notAPolicy from "./fixtures/not-a-policy.wasm";

// A bundle that is valid wasm but not an OPA policy stands in for a corrupt
// or incompatible build: the edge must fail closed with a safe message.
const app = createEdgeApp({
  config: {
    environment: "test",
    tenantConfigs: fixtureTenants as unknown as Record<string, TenantConfig>,
    tenantConfigOrigin: "fixtures",
  },
  policyModule: notAPolicy,
  policyBundleSha256: "0".repeat(64),
});
const transport = createConnectTransport({
  baseUrl: "http://edge.test",
  fetch: (input, init) =>
    Promise.resolve(app.fetch(new Request(input, { ...init, redirect: "manual" }))),
});
const client = createClient(PolicyService, transport);

describe("evaluation failure", () => {
  it("is Internal with a safe message, never an ALLOW and never a stack", async () => {
    const outcome = await client
      .checkPolicy({ tenantId: "test", policyId: "test" })
      .then((response) => response)
      .catch((e) => ConnectError.from(e));
    expect(outcome).toBeInstanceOf(ConnectError);
    const error = outcome as ConnectError;
    expect(error.code).toBe(Code.Internal);
    expect(error.rawMessage).not.toMatch(/wasm|export|\bat\b.*:\d+/i);
  });

  it("makes the health check report NOT_SERVING", async () => {
    const response = await createClient(Health, transport).check({});
    expect(response.status).toBe(HealthCheckResponse_ServingStatus.NOT_SERVING);
  });
});
