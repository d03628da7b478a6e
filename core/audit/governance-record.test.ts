import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { Decision } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { uuidv7 } from "../ids/uuidv7.js";
import { newEvent } from "./event-codec.js";
import { governanceRecord, isGovernanceEvent } from "./governance-record.js";

const TENANT = "0b8f3a52-6d4e-4c1a-9f7e-2a1b3c4d5e6f";
const AT = new Date("2026-11-24T16:07:37.775Z");

const event = (type: EventType, init: Parameters<typeof newEvent>[0] = {}) =>
  newEvent({
    eventId: uuidv7(),
    tenantId: TENANT,
    executionId: "exec-1",
    eventType: type,
    timestamp: timestampFromDate(AT),
    ...init,
  });

describe("governanceRecord", () => {
  it("ignores events the dashboard does not need", () => {
    for (const type of [EventType.POLICY_EVALUATED, EventType.LLM_CALL_COMPLETED]) {
      expect(isGovernanceEvent(type)).toBe(false);
      expect(governanceRecord(event(type))).toBeUndefined();
    }
  });

  it("maps a policy violation to policy.violation by the calling key, on the policy", () => {
    const e = event(EventType.POLICY_VIOLATION, {
      envelopeId: "env-1",
      payload: { prompt: "secret user text" },
      labels: { note: "free text" },
      policyResult: { policyId: "p1", ruleId: "r1", decision: Decision.DENY, reason: "no PII" },
      details: { case: "decision", value: { apiKeyId: "key_1", method: "CheckPolicy" } },
    });
    const outcome = governanceRecord(e);
    expect(outcome).toEqual({
      kind: "record",
      record: {
        id: e.eventId,
        tenantId: TENANT,
        actorType: "api_key",
        actorId: "key_1",
        action: "policy.violation",
        targetType: "policy",
        targetId: "p1",
        occurredAt: AT,
        details: {
          event_type: "POLICY_VIOLATION",
          execution_id: "exec-1",
          envelope_id: "env-1",
          decision: "DENY",
          policy_id: "p1",
          rule_id: "r1",
          reason: "no PII",
          method: "CheckPolicy",
        },
      },
    });
    // Never the payload or labels: they may carry prompt text.
    expect(JSON.stringify(outcome)).not.toMatch(/secret user text|free text/);
  });

  it.each([
    [EventType.POLICY_APPROVAL_REQUIRED, "approval.required"],
    [EventType.APPROVAL_REQUESTED, "approval.requested"],
    [EventType.APPROVAL_GRANTED, "approval.granted"],
    [EventType.APPROVAL_REJECTED, "approval.rejected"],
    [EventType.APPROVAL_EXPIRED, "approval.expired"],
    [EventType.BUDGET_WARNING, "budget.warning"],
    [EventType.BUDGET_EXCEEDED, "budget.exceeded"],
    [EventType.BUDGET_RESET, "budget.reset"],
  ])("maps %s to %s", (type, action) => {
    const outcome = governanceRecord(event(type, { source: "sdk/1.0" }));
    expect(outcome?.kind).toBe("record");
    if (outcome?.kind !== "record") return;
    expect(outcome.record).toMatchObject({
      action,
      actorType: "system",
      actorId: "sdk/1.0",
      targetType: "execution",
      targetId: "exec-1",
    });
  });

  it("puts budget numbers in details and targets the budget", () => {
    const outcome = governanceRecord(
      event(EventType.BUDGET_EXCEEDED, {
        details: {
          case: "budget",
          value: { budgetId: "b1", thresholdPercent: 100, usagePercent: 104.5, tokensUsed: 12n },
        },
      }),
    );
    expect(outcome).toMatchObject({
      kind: "record",
      record: {
        targetType: "budget",
        targetId: "b1",
        details: { budget_id: "b1", threshold_percent: 100, usage_percent: 104.5, tokens_used: 12 },
      },
    });
  });

  it("keeps a management change's own actor, action and target", () => {
    const e = event(EventType.MANAGEMENT_CHANGE, {
      details: {
        case: "management",
        value: {
          actorType: "user",
          actorId: "u1",
          action: "policy.version_activated",
          targetType: "policy",
          targetId: "p9",
        },
      },
    });
    expect(governanceRecord(e)).toMatchObject({
      kind: "record",
      record: {
        id: e.eventId,
        actorType: "user",
        actorId: "u1",
        action: "policy.version_activated",
        targetType: "policy",
        targetId: "p9",
      },
    });
  });

  it("skips what the table would reject, saying why", () => {
    expect(governanceRecord(event(EventType.POLICY_VIOLATION, { tenantId: "acme" }))).toEqual({
      kind: "skip",
      reason: "tenant_id is not a UUID",
    });
    expect(governanceRecord(event(EventType.MANAGEMENT_CHANGE))).toMatchObject({ kind: "skip" });
    const bad = (value: Record<string, string>) =>
      governanceRecord(
        event(EventType.MANAGEMENT_CHANGE, {
          details: {
            case: "management",
            value: { actorType: "user", action: "x.y", targetType: "t", ...value },
          },
        }),
      );
    expect(bad({ action: "Drop Table" })).toMatchObject({ kind: "skip" });
    expect(bad({ actorType: "robot" })).toMatchObject({ kind: "skip" });
    expect(bad({ targetType: "" })).toMatchObject({ kind: "skip" });
    expect(bad({})).toMatchObject({ kind: "record" });
  });

  it("lower-cases the ids it stores", () => {
    const outcome = governanceRecord(
      event(EventType.BUDGET_WARNING, { tenantId: TENANT.toUpperCase() }),
    );
    expect(outcome?.kind === "record" && outcome.record.tenantId).toBe(TENANT);
  });
});
