import { createHash } from "node:crypto";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import {
  Health,
  HealthCheckResponse_ServingStatus,
} from "../../proto/gen/grpc/health/v1/health_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { expectCode } from "../harness/management-helpers.js";

// The management API's HTTP surface as a client nobody here wrote sees it: plain JSON
// over HTTP, the health endpoints, and the Lambda entry point driven by a function-URL
// event, all against the real stack.
let stack: FunctionsStack;
let tenant: Awaited<ReturnType<FunctionsStack["createTenant"]>>;

beforeAll(async () => {
  stack = await startFunctionsStack();
  tenant = await stack.createTenant();
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

function post(path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${stack.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

describe("plain JSON over HTTP", () => {
  it("serves a management call with the key in x-api-key or as a Bearer token", async () => {
    const variants: Record<string, string>[] = [
      { "x-api-key": tenant.adminKey },
      { authorization: `Bearer ${tenant.adminKey}` },
    ];
    for (const headers of variants) {
      const res = await post("/fulcrum.policy.v1.PolicyService/ListPolicies", {}, headers);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({});
    }
  });

  it("answers errors as Connect JSON with a code and an actionable message, no stack", async () => {
    const cases: [Record<string, string>, unknown, number, string, RegExp][] = [
      [{}, {}, 401, "unauthenticated", /x-api-key/],
      [{ "x-api-key": "fk_nope" }, {}, 401, "unauthenticated", /Fulcrum API key/],
      [{ "x-api-key": tenant.adminKey }, { policy_id: "abc" }, 400, "invalid_argument", /UUID/],
      [{ "x-api-key": tenant.adminKey }, { polcy_id: "x" }, 400, "invalid_argument", /polcy_id/],
    ];
    for (const [headers, body, status, code, message] of cases) {
      const res = await post("/fulcrum.policy.v1.PolicyService/GetPolicy", body, headers);
      expect(res.status, JSON.stringify(body)).toBe(status);
      const json = (await res.json()) as { code: string; message: string };
      expect(json.code).toBe(code);
      expect(json.message).toMatch(message);
      expect(json.message).not.toMatch(/\bat .*\.(ts|js):\d+/);
    }
  });

  it("refuses an unknown route with 404 and a wrong method with 405", async () => {
    expect((await post("/fulcrum.policy.v1.PolicyService/Nope", {})).status).toBe(404);
    const get = await fetch(`${stack.url}/fulcrum.policy.v1.PolicyService/ListPolicies`);
    expect(get.status).toBe(405);
  });

  it("points evaluation calls at the edge", async () => {
    await expectCode(
      stack.client(PolicyService, tenant.adminKey).checkPolicy({ policyId: "p" }),
      Code.Unimplemented,
      /edge/,
    );
  });
});

describe("health", () => {
  it("is live, ready and SERVING without a key", async () => {
    const live = await fetch(`${stack.url}/healthz`);
    expect(await live.json()).toMatchObject({ status: "healthy", service: "fulcrum-functions" });
    const ready = await fetch(`${stack.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: "ready", checks: { database: "ok" } });
    const health = await stack.client(Health, undefined).check({ service: "" });
    expect(health.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    const policy = await stack.client(Health, undefined).check({ service: PolicyService.typeName });
    expect(policy.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
    await expectCode(stack.client(Health, undefined).check({ service: "x.Y" }), Code.NotFound);
  });
});

describe("the Lambda entry point", () => {
  it("answers a function-URL event through the same app, configured from the environment", async () => {
    const config = stack.config;
    const env: Record<string, string> = {
      DATABASE_URL: config.databaseUrl,
      PG_WS_PROXY_PORT: String(config.pgWsProxyPort),
      UPSTASH_REDIS_REST_URL: config.redisRestUrl,
      UPSTASH_REDIS_REST_TOKEN: config.redisRestToken,
      REDIS_KEY_NAMESPACE: config.redisKeyNamespace,
      OPA_BIN: config.opaBin,
      PLATFORM_ADMIN_KEY_SHA256: createHash("sha256").update(stack.platformKey).digest("hex"),
    };
    const saved = { ...process.env };
    Object.assign(process.env, env);
    let lambda: typeof import("../../functions/src/lambda.js");
    try {
      lambda = await import("../../functions/src/lambda.js");
    } finally {
      process.env = saved;
    }
    const handler = lambda.handler as unknown as (
      event: unknown,
      context: unknown,
    ) => Promise<{ statusCode: number; body: string }>;
    const event = {
      version: "2.0",
      routeKey: "$default",
      rawPath: "/fulcrum.policy.v1.PolicyService/ListPolicies",
      rawQueryString: "",
      headers: {
        host: "abc.lambda-url.eu-west-1.on.aws",
        "content-type": "application/json",
        "x-api-key": tenant.adminKey,
      },
      body: "{}",
      isBase64Encoded: false,
      requestContext: {
        accountId: "123456789012",
        apiId: "abc",
        domainName: "abc.lambda-url.eu-west-1.on.aws",
        domainPrefix: "abc",
        http: {
          method: "POST",
          path: "/fulcrum.policy.v1.PolicyService/ListPolicies",
          protocol: "HTTP/1.1",
          sourceIp: "127.0.0.1",
          userAgent: "test",
        },
        requestId: "r1",
        routeKey: "$default",
        stage: "$default",
        time: "24/Nov/2026:00:00:00 +0000",
        timeEpoch: 0,
      },
    };
    const ok = await handler(event, {});
    expect(ok.statusCode).toBe(200);
    expect(JSON.parse(ok.body)).toEqual({});
    const denied = await handler({ ...event, headers: { ...event.headers, "x-api-key": "" } }, {});
    expect(denied.statusCode).toBe(401);
    await lambda.shutdown();
  });
});
