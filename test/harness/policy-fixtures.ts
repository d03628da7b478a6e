import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";
import { ActionType, RuleType } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  ConditionOperator,
  type Rule,
  RuleSchema,
} from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";

/**
 * Shared pieces of the policy management tests: sample definitions and assertions on
 * Connect errors.
 */

/** Denies any call naming a tool that starts with `delete_`. */
export const DENY_DELETE_REGO = `package fulcrum.policy

deny contains {"message": "delete tools are blocked", "rule_id": "no-delete"} if {
	some tool in input.tool_names
	startswith(tool, "delete_")
}
`;

/** Warns on every call. */
export const WARN_ALWAYS_REGO = `package fulcrum.policy

warn contains "everything is watched"
`;

/** Two type errors / parse errors with known positions. */
export const BROKEN_REGO = `package fulcrum.policy

deny contains "x" if {
	input.tool_names ==
}
`;

export function toolRule(tool: string, type: RuleType = RuleType.TOOL_RESTRICTION): Rule {
  return create(RuleSchema, {
    name: `block ${tool}`,
    ruleType: type,
    conditions: [
      {
        kind: {
          case: "field",
          value: {
            field: "tool_names",
            operator: ConditionOperator.CONTAINS,
            value: { kind: { case: "stringValue", value: tool } },
          },
        },
      },
    ],
    actions: [{ type: ActionType.DENY, message: `${tool} is blocked` }],
  });
}

/** The Connect error a call failed with (fails the test when it succeeded). */
export async function failure(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  expect(outcome, "expected the call to fail").toBeDefined();
  return outcome as ConnectError;
}

export const uniqueName = (label: string) => `${label}-${randomBytes(4).toString("hex")}`;

/** `value`, failing the test when it is missing (instead of a non-null assertion). */
export function must<T>(value: T | undefined | null): T {
  expect(value).toBeDefined();
  expect(value).not.toBeNull();
  return value as T;
}
