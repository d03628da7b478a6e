import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../proto/gen/grpc/health/v1/health_pb.js";
import { workerClient, workerFetch } from "./client.js";

describe("health", () => {
  const health = workerClient(Health);

  it("grpc.health.v1.Health/Check answers SERVING for the server and each service", async () => {
    for (const service of ["", "fulcrum.policy.v1.PolicyService", "grpc.health.v1.Health"]) {
      const response = await health.check({ service });
      expect(response.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    }
  });

  it("an unknown service is NotFound, as the health protocol specifies", async () => {
    const error = await health
      .check({ service: "nope.v1.Nope" })
      .catch((e) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.NotFound);
  });

  it("GET /healthz answers JSON with the policy bundle it serves", async () => {
    const response = await workerFetch("http://edge.test/healthz");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    const body = (await response.json()) as Record<string, unknown>;
    expect(body.status).toBe("healthy");
    expect(body.policy_bundle_sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
