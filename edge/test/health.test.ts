import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../proto/gen/grpc/health/v1/health_pb.js";
import { workerClient, workerFetch } from "./client.js";

describe("health", () => {
  // Health is the one service that needs no API key.
  const health = workerClient(Health, { apiKey: null });

  it("grpc.health.v1.Health/Check answers SERVING for the server and each service, without a key", async () => {
    for (const service of ["", "fulcrum.policy.v1.PolicyService", "grpc.health.v1.Health"]) {
      const response = await health.check({ service });
      expect(response.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    }
  });

  it("ignores a malformed or unknown key rather than refusing the check", async () => {
    for (const apiKey of ["not-a-key", `fk_${"A".repeat(43)}`]) {
      const response = await workerClient(Health, { apiKey }).check({ service: "" });
      expect(response.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    }
  });

  it("an unknown service is NotFound, as the health protocol specifies", async () => {
    const error = await health
      .check({ service: "nope.v1.Nope" })
      .catch((e) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.NotFound);
  });

  it("GET /healthz answers JSON naming the service, without a key", async () => {
    const response = await workerFetch("http://edge.test/healthz");
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/json");
    expect(await response.json()).toEqual({
      status: "healthy",
      service: "fulcrum-edge",
      environment: "development",
    });
  });

  it("GET /readyz answers ready while Redis answers", async () => {
    const response = await workerFetch("http://edge.test/readyz");
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ status: "ready", checks: { redis: "ok" } });
  });
});
