import { create } from "@bufbuild/protobuf";
import { beforeAll, describe, expect, it } from "vitest";
import { ActionSchema, ActionType } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { type Rule, RuleSchema } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { edgeUrl, newTenant } from "../harness/e2e-stack.js";
import { toolRule } from "../harness/policy-fixtures.js";

/**
 * Connect's JSON protocol as a person with curl uses it: hand-written JSON,
 * snake_case field names, enum names as strings, no client library, the key
 * in a header. (`buf curl` always puts binary protobuf on the wire, so this is
 * where Connect-JSON from a client we did not generate is covered.)
 */

// biome-ignore lint/suspicious/noExplicitAny: replies are arbitrary JSON, asserted field by field.
type JsonReply = Record<string, any>;

let key = "";
let toolsPolicy = "";
let deletesPolicy = "";
let otherTenantId = "";
let otherPolicyId = "";

function rule(ruleId: string, tool: string, type: ActionType): Rule {
  return create(RuleSchema, {
    ...toolRule(tool),
    ruleId,
    name: ruleId,
    actions: [create(ActionSchema, { type, message: `${tool}: ${ActionType[type]}` })],
  });
}

beforeAll(async () => {
  const t = await newTenant("plain-json");
  toolsPolicy = (await t.activate({ rules: [rule("no-shell", "shell_exec", ActionType.DENY)] }))
    .policyId;
  deletesPolicy = (
    await t.activate({
      rules: [rule("approve-deletes", "delete_invoice", ActionType.REQUIRE_APPROVAL)],
    })
  ).policyId;
  key = (await t.newKey()).key;
  const other = await newTenant("plain-json-other");
  otherTenantId = other.tenantId;
  otherPolicyId = (await other.activate({ rules: [toolRule("shell_exec")] })).policyId;
}, 60_000);

async function post(procedure: string, body: string, headers: Record<string, string> = {}) {
  const response = await fetch(`${edgeUrl()}/${procedure}`, {
    method: "POST",
    headers: { "content-type": "application/json", "x-api-key": key, ...headers },
    body,
  });
  return { status: response.status, body: (await response.json()) as JsonReply };
}

describe("Connect JSON by hand", () => {
  it("answers the README's CheckPolicy example", async () => {
    const { status, body } = await post(
      "fulcrum.policy.v1.PolicyService/CheckPolicy",
      JSON.stringify({ policy_id: toolsPolicy }),
    );
    expect(status).toBe(200);
    expect(body.decision).toBe("DECISION_ALLOW");
    expect(body.allowed).toBe(true);
  });

  it("takes the key as Authorization: Bearer too", async () => {
    const response = await fetch(`${edgeUrl()}/fulcrum.policy.v1.PolicyService/CheckPolicy`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify({ context: { tool_names: ["shell_exec"] } }),
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as JsonReply).decision).toBe("DECISION_DENY");
  });

  it("takes enum names and snake_case fields and returns the full decision", async () => {
    const { status, body } = await post(
      "fulcrum.policy.v1.PolicyService/EvaluatePolicies",
      JSON.stringify({
        policy_ids: [deletesPolicy, toolsPolicy],
        context: {
          phase: "PHASE_PRE_TOOL_CALL",
          model_id: "gpt-4o",
          tool_names: ["delete_invoice"],
        },
      }),
    );
    expect(status).toBe(200);
    expect(body.finalDecision).toBe("DECISION_REQUIRE_APPROVAL");
    expect(body.results.map((r: { policyId: string }) => r.policyId)).toEqual([
      deletesPolicy,
      toolsPolicy,
    ]);
    expect(body.results[0].matchedRules[0].ruleId).toBe("approve-deletes");
    expect(body.results[1].decision).toBe("DECISION_ALLOW");
  });

  it("refuses an unknown enum name with InvalidArgument", async () => {
    const { status, body } = await post(
      "fulcrum.policy.v1.PolicyService/EvaluatePolicy",
      '{"context":{"phase":"PHASE_WHENEVER"}}',
    );
    expect(status).toBe(400);
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("fulcrum.policy.v1.Phase");
    expect(body.message).toContain("PHASE_WHENEVER");
  });

  it("answers grpc.health.v1.Health/Check without a key", async () => {
    const response = await fetch(`${edgeUrl()}/grpc.health.v1.Health/Check`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
    });
    expect(response.status).toBe(200);
    expect(((await response.json()) as JsonReply).status).toBe("SERVING");
  });
});

describe("error shapes", () => {
  it("Unauthenticated (401) without a key", async () => {
    const { status, body } = await post("fulcrum.policy.v1.PolicyService/CheckPolicy", "{}", {
      "x-api-key": "",
    });
    expect(status).toBe(401);
    expect(body.code).toBe("unauthenticated");
    expect(typeof body.message).toBe("string");
  });

  it("PermissionDenied (403) for another tenant's tenant_id", async () => {
    const { status, body } = await post(
      "fulcrum.policy.v1.PolicyService/CheckPolicy",
      JSON.stringify({ tenant_id: otherTenantId }),
    );
    expect(status).toBe(403);
    expect(body.code).toBe("permission_denied");
  });

  it("NotFound (404) naming a policy that is not active for the tenant (another tenant's)", async () => {
    const { status, body } = await post(
      "fulcrum.policy.v1.PolicyService/EvaluatePolicy",
      JSON.stringify({ policy_id: otherPolicyId, context: {} }),
    );
    expect(body).toMatchObject({ code: "not_found" });
    expect(status).toBe(404);
    expect(body.message).toContain("is not active");
    expect(body.message).toContain(otherPolicyId);
  });
});

describe("strict JSON", () => {
  it("refuses a misspelled field instead of judging the request without it", async () => {
    const { status, body } = await post(
      "fulcrum.policy.v1.PolicyService/EvaluatePolicy",
      JSON.stringify({ policy_id: toolsPolicy, context: { tool_name: ["shell_exec"] } }),
    );
    expect(status).toBe(400);
    expect(body.code).toBe("invalid_argument");
    expect(body.message).toContain("tool_name");
  });
});
