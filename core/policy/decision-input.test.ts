import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { EvaluationContextSchema, Phase } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { toDecisionInput } from "./decision-input.js";

describe("toDecisionInput", () => {
  it("leaves empty and default fields out (the Rego reads them as empty, cost as 0)", () => {
    const input = toDecisionInput(create(EvaluationContextSchema, { tenantId: "t" }), [], false);
    expect(JSON.stringify(input)).toBe('{"context":{"tenant_id":"t"}}');
    expect(toDecisionInput(undefined, [], false)).toEqual({ context: {} });
  });

  it("keeps every field that says something", () => {
    const context = create(EvaluationContextSchema, {
      tenantId: "t",
      workflowId: "w",
      envelopeId: "e",
      userId: "u",
      userRoles: ["r"],
      phase: Phase.PRE_TOOL_CALL,
      modelId: "m",
      toolNames: ["x"],
      inputText: "i",
      outputText: "o",
      attributes: { k: "v" },
      estimatedCostUsd: 0.5,
      action: "a",
    });
    expect(toDecisionInput(context, ["p"], true)).toEqual({
      policy_ids: ["p"],
      dry_run: true,
      context: {
        tenant_id: "t",
        workflow_id: "w",
        envelope_id: "e",
        user_id: "u",
        user_roles: ["r"],
        phase: "PRE_TOOL_CALL",
        model_id: "m",
        tool_names: ["x"],
        input_text: "i",
        output_text: "o",
        attributes: { k: "v" },
        estimated_cost_usd: 0.5,
        action: "a",
      },
    });
  });
});
