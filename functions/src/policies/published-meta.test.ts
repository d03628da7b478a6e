import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { ActionType, RuleType } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  PolicySchema,
  type Rule,
  RuleSchema,
} from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { definitionOf } from "./policy-definition.js";
import { type PublishTarget, publishedMeta } from "./published-meta.js";

const throttle = (
  parameters: Record<string, string>,
  over: MessageInitShape<typeof RuleSchema> = {},
): Rule =>
  create(RuleSchema, {
    name: "limit",
    ruleType: RuleType.RATE_LIMIT,
    actions: [{ type: ActionType.THROTTLE, parameters }],
    ...over,
  });

const target = (definition: PublishTarget["definition"]): PublishTarget => ({
  tenantId: "t1",
  policyId: "p1",
  version: 3,
  sha256: "s",
  wasmSha256: "w",
  entrypoint: "fulcrum/entry/result",
  definition,
});

describe("publishedMeta rate_limits", () => {
  it("publishes the specs of the enabled RATE_LIMIT rules, by their (assigned) rule ids", () => {
    const { policy } = definitionOf(
      create(PolicySchema, {
        rules: [
          create(RuleSchema, {
            name: "deny",
            ruleType: RuleType.TOOL_RESTRICTION,
            actions: [{ type: ActionType.DENY }],
          }),
          throttle({ requests_per_minute: "60", per: "api_key" }),
          throttle({ tokens_per_minute: "1000" }, { ruleId: "tokens", enabled: false }),
        ],
      }),
    );
    const meta = publishedMeta(target(policy));
    expect(meta.source_kind).toBe("rules");
    expect(meta.rate_limits).toEqual([
      {
        id: "p1/rule-2/requests_per_minute",
        scope: "api_key",
        unit: "requests",
        limit: 60,
        window: "1m",
        algorithm: "sliding_window",
        failure_mode: "FAIL_CLOSED",
      },
    ]);
  });

  it("leaves rate_limits out without RATE_LIMIT rules and for Rego", () => {
    const rules = definitionOf(
      create(PolicySchema, {
        rules: [create(RuleSchema, { name: "w", actions: [{ type: ActionType.WARN }] })],
      }),
    ).policy;
    expect(publishedMeta(target(rules))).not.toHaveProperty("rate_limits");
    const rego = definitionOf(create(PolicySchema, { regoSource: "package fulcrum.policy\n" }));
    expect(publishedMeta(target(rego.policy))).not.toHaveProperty("rate_limits");
  });

  it("refuses to publish a stored RATE_LIMIT rule that is not valid (FailedPrecondition)", () => {
    const { policy } = definitionOf(
      create(PolicySchema, {
        rules: [throttle({ requests_per_minute: "1" }, { actions: [{ type: ActionType.DENY }] })],
      }),
    );
    let error: unknown;
    try {
      publishedMeta(target(policy));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FulcrumError);
    expect((error as FulcrumError).kind).toBe("FailedPrecondition");
    expect((error as FulcrumError).message).toMatch(
      /^version 3 of policy p1 has a RATE_LIMIT rule that is not valid \(rules\[0\]\.actions\[0\]\.type: .*\); write a new version$/,
    );
  });
});
