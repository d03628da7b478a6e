import { create } from "@bufbuild/protobuf";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { GovernanceSchema } from "../../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";
import { EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import {
  governanceFromJson,
  governanceFromProto,
  governanceToJson,
  governanceToProto,
  withinParent,
} from "./envelope-governance.js";
import { allowedNext, isTerminal, transitionEventType } from "./envelope-transitions.js";

const gov = (init: Parameters<typeof create<typeof GovernanceSchema>>[1]) =>
  governanceFromProto(create(GovernanceSchema, init), "");

describe("governanceFromProto", () => {
  it("turns the proto into integer units, zero meaning no cap", () => {
    expect(
      gov({
        tokenBudget: 10n,
        costLimitUsd: 0.000_001_4,
        maxLlmCalls: 0,
        timeout: create(DurationSchema, { seconds: 2n, nanos: 500_000_000 }),
        allowedModels: ["a", "a", "b"],
      }),
    ).toEqual({
      tokenBudget: 10,
      costLimitMicros: 1,
      timeoutMs: 2500,
      allowedModels: ["a", "b"],
      allowedTools: [],
      complianceTags: [],
    });
  });

  it("refuses a timeout past 7 days and disagreeing budget ids", () => {
    expect(() => gov({ timeout: create(DurationSchema, { seconds: 604_801n }) })).toThrow(/7 days/);
    expect(() => governanceFromProto(create(GovernanceSchema, { budgetId: "x" }), "y")).toThrow(
      /differs/,
    );
  });

  it("round-trips through the stored JSON and the proto", () => {
    const g = gov({ tokenBudget: 7n, costLimitUsd: 1.25, maxToolCalls: 3, allowedTools: ["t*"] });
    expect(governanceFromJson(governanceToJson(g))).toEqual(g);
    expect(governanceFromProto(governanceToProto(g), "")).toEqual(g);
  });
});

describe("withinParent", () => {
  const parent = gov({ tokenBudget: 100n, allowedTools: ["search_*", "read"], allowedModels: [] });

  it("inherits what the child leaves unset", () => {
    expect(withinParent(gov({}), parent, "p")).toMatchObject({
      tokenBudget: 100,
      allowedTools: ["search_*", "read"],
      allowedModels: [],
    });
  });

  it("accepts narrower limits and lists, refuses wider ones", () => {
    expect(
      withinParent(gov({ tokenBudget: 100n, allowedTools: ["search_web"] }), parent, "p"),
    ).toMatchObject({ tokenBudget: 100, allowedTools: ["search_web"] });
    expect(() => withinParent(gov({ tokenBudget: 101n }), parent, "p")).toThrow(/exceeds/);
    expect(() => withinParent(gov({ allowedTools: ["write"] }), parent, "p")).toThrow(/"write"/);
    // A parent that restricts nothing lets the child restrict as it likes.
    expect(withinParent(gov({ allowedModels: ["m"] }), parent, "p").allowedModels).toEqual(["m"]);
  });
});

describe("transitions", () => {
  it("maps each status to its event type", () => {
    expect(transitionEventType("AUTHORIZED", "RUNNING").eventType).toBe(
      EventType.EXECUTION_STARTED,
    );
    expect(transitionEventType("PAUSED", "RUNNING").eventType).toBe(EventType.EXECUTION_RESUMED);
    expect(transitionEventType("RUNNING", "TIMEOUT").eventType).toBe(EventType.EXECUTION_FAILED);
    expect(transitionEventType("RUNNING", "BUDGET_EXCEEDED").eventType).toBe(
      EventType.EXECUTION_TERMINATED,
    );
    expect(transitionEventType(null, "PENDING")).toEqual({
      eventType: EventType.CUSTOM,
      customType: "envelope.created",
    });
  });

  it("has final states with no way out", () => {
    expect(isTerminal("COMPLETED")).toBe(true);
    expect(isTerminal("PAUSED")).toBe(false);
    expect(allowedNext("PAUSED")).toEqual(["RUNNING", "TERMINATED", "TIMEOUT"]);
  });
});
