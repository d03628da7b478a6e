import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { EventSchema, EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import {
  Decision,
  DecisionReason,
  Phase,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { newDecisionId, uuidv7 } from "../ids/uuidv7.js";
import type { DecisionEvent } from "./decision-event.js";
import { decisionToEvent } from "./decision-to-event.js";
import { decodeEvent, encodeEvent, MAX_EVENT_BYTES, newEvent } from "./event-codec.js";
import { dateFromClickHouse, eventToRow, rowToEvent } from "./event-row.js";
import { DEFAULT_EVENT_STREAM_SETTINGS, parseEventStreamSettings } from "./event-stream.js";
import {
  deadLetterSubject,
  eventSubject,
  eventTypeFromName,
  eventTypeName,
  tenantEventsSubject,
} from "./event-subject.js";

const TENANT = "6f1c2f9e-3f7a-4a53-9f0e-2f4b8d1e0c11";

function sampleEvent() {
  return newEvent({
    eventId: uuidv7(),
    tenantId: TENANT,
    executionId: "exec-1",
    workflowId: "wf",
    eventType: EventType.LLM_CALL_COMPLETED,
    timestamp: timestampFromDate(new Date("2026-11-24T10:00:00.123Z")),
    labels: { team: 'it\'s "quoted"\t' },
    tokenInfo: { modelId: "gpt-x", inputTokens: 12n, outputTokens: 34n, costUsd: 0.0021 },
  });
}

describe("subjects", () => {
  it("names subjects by tenant and short type", () => {
    expect(eventSubject(TENANT, EventType.POLICY_VIOLATION)).toBe(
      `fulcrum.events.${TENANT}.policy_violation`,
    );
    expect(tenantEventsSubject(TENANT)).toBe(`fulcrum.events.${TENANT}.>`);
    expect(deadLetterSubject(`fulcrum.events.${TENANT}.custom`)).toBe(
      `fulcrum.deadletter.${TENANT}.custom`,
    );
  });

  it("refuses tenant ids that would change the subject's shape", () => {
    for (const bad of ["a.b", "a>", "*", "", "a b"]) {
      expect(() => eventSubject(bad, EventType.CUSTOM)).toThrow(RangeError);
    }
    expect(() => eventSubject(TENANT, EventType.UNSPECIFIED)).toThrow(RangeError);
  });

  it("maps type names both ways", () => {
    expect(eventTypeName(EventType.MANAGEMENT_CHANGE)).toBe("MANAGEMENT_CHANGE");
    expect(eventTypeFromName("MANAGEMENT_CHANGE")).toBe(EventType.MANAGEMENT_CHANGE);
    expect(eventTypeFromName("UNSPECIFIED")).toBeUndefined();
    expect(eventTypeFromName("NOPE")).toBeUndefined();
  });
});

describe("codec", () => {
  it("round trips and stamps the schema version", () => {
    const event = sampleEvent();
    const decoded = decodeEvent(encodeEvent(event));
    expect(decoded.ok).toBe(true);
    if (decoded.ok) {
      expect(decoded.event.schemaVersion).toBe(1);
      expect(decoded.event.eventId).toBe(event.eventId);
      expect(decoded.event.tokenInfo?.outputTokens).toBe(34n);
    }
  });

  it("rejects what storage cannot use, with a reason", () => {
    const cases: [Uint8Array, RegExp][] = [
      [new Uint8Array([0xff, 0xff, 0xff]), /not a protobuf Event/],
      [new Uint8Array(MAX_EVENT_BYTES + 1), /limit/],
      [toBinary(EventSchema, { ...sampleEvent(), eventId: "not-a-uuid" }), /UUIDv7/],
      [toBinary(EventSchema, { ...sampleEvent(), tenantId: "" }), /tenant_id/],
      [toBinary(EventSchema, { ...sampleEvent(), eventType: 999 as EventType }), /event_type/],
      [toBinary(EventSchema, { ...sampleEvent(), schemaVersion: 2 }), /newer/],
      [
        toBinary(EventSchema, create(EventSchema, { ...sampleEvent(), timestamp: undefined })),
        /timestamp/,
      ],
    ];
    for (const [bytes, reason] of cases) {
      const decoded = decodeEvent(bytes);
      expect(decoded.ok).toBe(false);
      if (!decoded.ok) expect(decoded.reason).toMatch(reason);
    }
  });
});

describe("ClickHouse rows", () => {
  it("carry the filter columns and give the event back", () => {
    const event = sampleEvent();
    const storedAt = new Date("2026-11-24T10:00:01.5Z");
    const row = eventToRow(event, { sequence: 42, storedAt });
    expect(row).toMatchObject({
      tenant_id: TENANT,
      event_time: "2026-11-24 10:00:00.123",
      event_type: "LLM_CALL_COMPLETED",
      model_id: "gpt-x",
      input_tokens: 12,
      output_tokens: 34,
      stream_sequence: 42,
      stored_at: "2026-11-24 10:00:01.500",
    });
    expect(dateFromClickHouse(row.stored_at).getTime()).toBe(storedAt.getTime());
    const back = rowToEvent(row);
    expect(back.sequence).toBe(42n);
    expect(back.labels).toEqual(event.labels);
    expect(back.eventId).toBe(event.eventId);
  });
});

describe("decision events", () => {
  const decision: DecisionEvent = {
    decision_id: newDecisionId(),
    tenant_id: TENANT,
    api_key_id: "key_1",
    method: "CheckPolicy",
    decided_at: "2026-11-24T10:00:00.000Z",
    decision: "DENY",
    reason: "RATE_LIMITED",
    dry_run: false,
    policies: [{ policy_id: "p1", version: "3", decision: "ALLOW", dry_run: false }],
    matched_rules: [{ policy_id: "p1", rule_id: "r1" }],
    rate_limits_exceeded: ["p1/r2/requests_per_minute"],
    failure_mode: { component: "rate_limit", mode: "FAIL_OPEN", message: "redis down" },
    workflow_id: "wf",
    phase: "PRE_TOOL_CALL",
    tool_names: ["shell"],
    evaluation_duration_ms: 1.5,
  };

  it("become one storable event whose id is the decision's UUID", () => {
    const event = decisionToEvent(decision);
    expect(`dec_${event.eventId}`).toBe(decision.decision_id);
    expect(event.eventType).toBe(EventType.POLICY_VIOLATION);
    expect(event.policyResult?.decision).toBe(Decision.DENY);
    expect(event.details.case).toBe("decision");
    if (event.details.case === "decision") {
      expect(event.details.value.reason).toBe(DecisionReason.RATE_LIMITED);
      expect(event.details.value.phase).toBe(Phase.PRE_TOOL_CALL);
      expect(event.details.value.failureMode?.message).toBe("redis down");
    }
    expect(decodeEvent(encodeEvent(event)).ok).toBe(true);
  });

  it("type each verdict", () => {
    const typeOf = (d: DecisionEvent["decision"]) =>
      decisionToEvent({ ...decision, decision: d }).eventType;
    expect(typeOf("ALLOW")).toBe(EventType.POLICY_EVALUATED);
    expect(typeOf("WARN")).toBe(EventType.POLICY_WARNING);
    expect(typeOf("REQUIRE_APPROVAL")).toBe(EventType.POLICY_APPROVAL_REQUIRED);
  });
});

describe("stream settings", () => {
  it("default, scale and reject", () => {
    expect(parseEventStreamSettings({})).toEqual(DEFAULT_EVENT_STREAM_SETTINGS);
    expect(
      parseEventStreamSettings({
        EVENTS_STREAM_MAX_AGE_HOURS: "24",
        EVENTS_STREAM_MAX_BYTES: "1048576",
        EVENTS_DUPLICATE_WINDOW_SECONDS: "30",
      }),
    ).toEqual({ maxAgeMs: 86_400_000, maxBytes: 1_048_576, duplicateWindowMs: 30_000 });
    expect(() => parseEventStreamSettings({ EVENTS_STREAM_MAX_BYTES: "-1" })).toThrow(
      /EVENTS_STREAM_MAX_BYTES/,
    );
  });
});
