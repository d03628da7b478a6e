import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { CostService } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import {
  keyedFetch,
  postJson,
  postJsonStream,
  repeated,
  workerClient,
  workerFetch,
} from "./client.js";

const EVALUATE = "fulcrum.policy.v1.PolicyService/EvaluatePolicy";
const EVALUATE_MANY = "fulcrum.policy.v1.PolicyService/EvaluatePolicies";

// Every request below carries the seeded check key (client.ts), so what it meets is the
// input check it is about, not authentication (auth.test.ts covers that).

async function connectError(response: Response) {
  const body = (await response.json()) as { code: string; message: string };
  expect(body.message).not.toMatch(/\bat .+:\d+:\d+/); // no stack frames
  return body;
}

describe("bad input", () => {
  it("malformed JSON is InvalidArgument", async () => {
    const response = await postJson(EVALUATE, '{"context": {"tool_names": ["x"]');
    expect(response.status).toBe(400);
    expect((await connectError(response)).code).toBe("invalid_argument");
  });

  it("malformed protobuf is InvalidArgument", async () => {
    const response = await keyedFetch(`http://edge.test/${EVALUATE}`, {
      method: "POST",
      headers: { "content-type": "application/proto" },
      body: new Uint8Array([0x12, 0xff, 0xff, 0xff, 0x0f, 0x01]),
    });
    expect(response.status).toBe(400);
    expect((await connectError(response)).code).toBe("invalid_argument");
  });

  it("a wrong field type names the field", async () => {
    const response = await postJson(EVALUATE, '{"context": {"tool_names": 7}}');
    const body = await connectError(response);
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("tool_names");
  });

  it("a wrong content type is refused with what to send instead", async () => {
    const response = await postJson(EVALUATE, "{}", { "content-type": "text/plain" });
    expect(response.status).toBe(415);
    const body = await connectError(response);
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("application/json");
  });

  it("an absurd cost estimate is InvalidArgument naming the field, not a budget outage", async () => {
    const body = await connectError(
      await postJson(
        "fulcrum.policy.v1.PolicyService/CheckPolicy",
        '{"context": {"estimated_cost_usd": 1e300}}',
      ),
    );
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("estimated_cost_usd");
  });

  it("a missing required field is InvalidArgument naming it", async () => {
    const body = await connectError(await postJson(EVALUATE, "{}"));
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("context");

    const noPolicies = await connectError(await postJson(EVALUATE_MANY, '{"context": {}}'));
    expect(noPolicies.code).toBe("invalid_argument");
    expect(noPolicies.message).toContain("policy_ids");
  });

  it("an invalid field value is InvalidArgument naming it", async () => {
    const client = workerClient(PolicyService);
    const error = await client
      .evaluatePolicy({ context: { estimatedCostUsd: -1 } })
      .catch((e) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toContain("context.estimated_cost_usd");

    const badId = await client
      .evaluatePolicy({ policyId: "no spaces allowed", context: {} })
      .catch((e) => ConnectError.from(e));
    expect((badId as ConnectError).code).toBe(Code.InvalidArgument);
    expect((badId as ConnectError).rawMessage).toContain("policy_id");
  });

  it("a body over 1 MiB is refused before it is parsed", async () => {
    const big = JSON.stringify({
      context: { input_text: "x".repeat(1_100_000) },
    });
    const response = await postJson(EVALUATE, big);
    expect(response.status).toBe(400);
    const body = await connectError(response);
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("1 MiB");
  });

  it("a body over 1 MiB without Content-Length is refused while streaming", async () => {
    const chunk = new TextEncoder().encode("x".repeat(64 * 1024));
    const response = await postJsonStream(EVALUATE, repeated(chunk, 20));
    expect(response.status).toBe(400);
    expect((await connectError(response)).message).toContain("1 MiB");
  });

  it("a policy that is not active for the key's tenant is NotFound naming it", async () => {
    const response = await postJson(EVALUATE, '{"policy_id": "pol_nope", "context": {}}');
    expect(response.status).toBe(404);
    const body = await connectError(response);
    expect(body.code).toBe("not_found");
    expect(body.message).toContain('policy "pol_nope" is not active for this tenant');
  });

  it("naming active and inactive policies together is NotFound naming only the inactive", async () => {
    const body = await connectError(
      await postJson(EVALUATE_MANY, '{"policy_ids": ["deletes", "pol_nope"], "context": {}}'),
    );
    expect(body.code).toBe("not_found");
    expect(body.message).toContain('"pol_nope"');
    expect(body.message).not.toContain('"deletes"');
  });

  it("a request that is valid and names an active policy is answered", async () => {
    const response = await postJson(EVALUATE, '{"policy_id": "deletes", "context": {}}');
    expect(response.status).toBe(200);
    const body = (await response.json()) as { result: { decision: string; policyId: string } };
    expect(body.result).toMatchObject({ decision: "DECISION_ALLOW", policyId: "deletes" });
  });

  it("methods of later issues answer Unimplemented", async () => {
    const error = await workerClient(CostService)
      .getBudget({ budgetId: "budget_1" })
      .catch((e) => ConnectError.from(e));
    expect((error as ConnectError).code).toBe(Code.Unimplemented);
  });

  it("an unknown path is a JSON 404", async () => {
    const response = await workerFetch("http://edge.test/nope");
    expect(response.status).toBe(404);
    expect(((await response.json()) as { code: string }).code).toBe("not_found");
  });
});
