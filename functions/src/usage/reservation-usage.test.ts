import { describe, expect, it } from "vitest";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { ReservationHint } from "./reservation-lookup.js";
import { checkReservationEnvelope, withReservedCalls } from "./reservation-usage.js";
import type { UsageInput } from "./usage-input.js";

const ENV = "0192f000-0000-7000-8000-00000000000a";
const OTHER = "0192f000-0000-7000-8000-00000000000b";
const input = (over: Partial<UsageInput> = {}): UsageInput => ({
  reservationId: "r-1",
  inputTokens: 10,
  outputTokens: 5,
  costMicros: 100,
  llmCalls: 0,
  toolCalls: 0,
  executionMs: 0,
  occurredAt: new Date(0),
  ...over,
});
const hint = (over: Partial<ReservationHint> = {}): ReservationHint => ({
  budgetIds: [],
  envelopeIds: [],
  ...over,
});

describe("withReservedCalls", () => {
  it("floors the calls at the reserved ones, keeps tokens and cost as reported", () => {
    const out = withReservedCalls(
      input({ llmCalls: 2 }),
      hint({ reservedCalls: { llmCalls: 1, toolCalls: 3 } }),
    );
    expect(out).toMatchObject({ llmCalls: 2, toolCalls: 3, inputTokens: 10, costMicros: 100 });
  });
  it("counts the request as reported when the reservation is gone", () => {
    expect(withReservedCalls(input(), hint())).toMatchObject({ llmCalls: 0, toolCalls: 0 });
  });
});

describe("checkReservationEnvelope", () => {
  it("accepts no envelope_id, an envelope of the reservation, or a reservation without any", () => {
    const mine = hint({ envelopeIds: [ENV] });
    expect(() => checkReservationEnvelope(input(), mine)).not.toThrow();
    expect(() =>
      checkReservationEnvelope(input({ envelopeId: ENV.toUpperCase() }), mine),
    ).not.toThrow();
    expect(() => checkReservationEnvelope(input({ envelopeId: OTHER }), hint())).not.toThrow();
  });
  it("refuses another envelope, naming envelope_id", () => {
    let error: unknown;
    try {
      checkReservationEnvelope(input({ envelopeId: OTHER }), hint({ envelopeIds: [ENV] }));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(FulcrumError);
    expect((error as FulcrumError).field).toBe("envelope_id");
  });
});
