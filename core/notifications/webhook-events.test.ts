import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import {
  BudgetInfoSchema,
  DecisionDetailsSchema,
  EventType,
} from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { Decision, DecisionReason } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { newEvent } from "../audit/event-codec.js";
import { webhookBody, webhookSubjects, webhookWants } from "./webhook-events.js";

const base = {
  eventId: "0193a0b0-0000-7000-8000-000000000001",
  tenantId: "7d3f0c1e-0000-4000-8000-000000000002",
  executionId: "exec-1",
  timestamp: timestampFromMs(Date.UTC(2026, 10, 24, 12)),
};

describe("webhook events", () => {
  it("defaults to budget warnings / exceeded and approval requests", () => {
    expect(webhookWants([], EventType.BUDGET_WARNING)).toBe(true);
    expect(webhookWants([], EventType.APPROVAL_REQUESTED)).toBe(true);
    expect(webhookWants([], EventType.POLICY_VIOLATION)).toBe(false);
    expect(webhookWants(["POLICY_VIOLATION"], EventType.POLICY_VIOLATION)).toBe(true);
    expect(webhookWants(["POLICY_VIOLATION"], EventType.BUDGET_WARNING)).toBe(false);
    expect(webhookSubjects()).toContain("fulcrum.events.*.budget_warning");
  });

  it("turns a budget event into the documented body", () => {
    const body = webhookBody(
      newEvent({
        ...base,
        eventType: EventType.BUDGET_EXCEEDED,
        labels: { secret: "never sent" },
        details: {
          case: "budget",
          value: create(BudgetInfoSchema, {
            budgetId: "b1",
            thresholdPercent: 100,
            tokensUsed: 5n,
          }),
        },
      }),
    );
    expect(body).toEqual({
      event_id: base.eventId,
      type: "BUDGET_EXCEEDED",
      tenant_id: base.tenantId,
      occurred_at: "2026-11-24T12:00:00.000Z",
      data: {
        execution_id: "exec-1",
        budget: { budget_id: "b1", threshold_percent: 100, tokens_used: "5" },
      },
    });
  });

  it("summarises a decision and carries an approval's payload", () => {
    const body = webhookBody(
      newEvent({
        ...base,
        eventType: EventType.POLICY_VIOLATION,
        policyResult: { policyId: "p", ruleId: "r", decision: Decision.DENY },
        payload: { approval_id: "a1" },
        details: {
          case: "decision",
          value: create(DecisionDetailsSchema, {
            reason: DecisionReason.POLICY,
            toolNames: ["shell_exec"],
          }),
        },
      }),
    );
    expect(body.data).toMatchObject({
      decision: { reason: "POLICY", tool_names: ["shell_exec"] },
      policy_result: { policy_id: "p", rule_id: "r", decision: "DECISION_DENY" },
      payload: { approval_id: "a1" },
    });
  });
});
