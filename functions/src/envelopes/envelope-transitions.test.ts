import { describe, expect, it } from "vitest";
import { ENVELOPE_STATUSES, isEnvelopeFinal } from "../../../core/budget/envelope-record.js";
import { allowedNext, canTransition } from "./envelope-transitions.js";

// The lifecycle table and core's final list are written separately (the edge and the
// Redis script use core's); they must agree or a record could expire while it may still run.
describe("envelope lifecycle", () => {
  it("has no way out of exactly core's final statuses", () => {
    for (const status of ENVELOPE_STATUSES) {
      expect(allowedNext(status).length === 0, status).toBe(isEnvelopeFinal(status));
    }
  });

  it("never moves back to PENDING", () => {
    for (const status of ENVELOPE_STATUSES) expect(canTransition(status, "PENDING")).toBe(false);
  });
});
