import { describe, expect, inject, it } from "vitest";

/**
 * Connect's JSON protocol as a person with curl uses it: hand-written JSON,
 * snake_case field names, enum names as strings, no client library. (`buf curl`
 * always puts binary protobuf on the wire, so this is where Connect-JSON from
 * a client we did not generate is covered.)
 */
const baseUrl = inject("edgeUrl");

// biome-ignore lint/suspicious/noExplicitAny: replies are arbitrary JSON, asserted field by field.
type JsonReply = Record<string, any>;

async function post(procedure: string, body: string) {
  const response = await fetch(`${baseUrl}/${procedure}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });
  return { status: response.status, body: (await response.json()) as JsonReply };
}

describe("Connect JSON by hand", () => {
  it("answers the README's CheckPolicy example", async () => {
    const { status, body } = await post(
      "fulcrum.policy.v1.PolicyService/CheckPolicy",
      '{"tenant_id":"test","policy_id":"test"}',
    );
    expect(status).toBe(200);
    expect(body.decision).toBe("DECISION_ALLOW");
    expect(body.allowed).toBe(true);
  });

  it("takes enum names and snake_case fields and returns the full decision", async () => {
    const { status, body } = await post(
      "fulcrum.policy.v1.PolicyService/EvaluatePolicies",
      JSON.stringify({
        policy_ids: ["pol_safe_tools", "pol_models"],
        context: {
          tenant_id: "demo",
          phase: "PHASE_PRE_TOOL_CALL",
          model_id: "gpt-4o",
          tool_names: ["delete_invoice"],
        },
      }),
    );
    expect(status).toBe(200);
    expect(body.finalDecision).toBe("DECISION_REQUIRE_APPROVAL");
    expect(body.results.map((r: { policyId: string }) => r.policyId)).toEqual([
      "pol_safe_tools",
      "pol_models",
    ]);
    expect(body.results[0].matchedRules[0].ruleId).toBe("approve_deletes");
  });

  it("refuses an unknown enum name with InvalidArgument", async () => {
    const { status, body } = await post(
      "fulcrum.policy.v1.PolicyService/EvaluatePolicy",
      '{"context":{"tenant_id":"demo","phase":"PHASE_WHENEVER"}}',
    );
    expect(status).toBe(400);
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("fulcrum.policy.v1.Phase");
    expect(body.message).toContain("PHASE_WHENEVER");
  });

  it("answers grpc.health.v1.Health/Check", async () => {
    const { status, body } = await post("grpc.health.v1.Health/Check", "{}");
    expect(status).toBe(200);
    expect(body.status).toBe("SERVING");
  });
});

describe("strict JSON", () => {
  it("refuses a misspelled field instead of judging the request without it", async () => {
    const { status, body } = await post(
      "fulcrum.policy.v1.PolicyService/EvaluatePolicy",
      '{"policy_id":"pol_safe_tools","context":{"tenant_id":"demo","tool_name":["shell_exec"]}}',
    );
    expect(status).toBe(400);
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("tool_name");
  });
});
