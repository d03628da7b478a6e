import { describe, expect, it } from "vitest";
import { isUuid } from "./uuid.js";
import { uuidv7 } from "./uuidv7.js";

describe("isUuid", () => {
  it("accepts the canonical form in either case", () => {
    expect(isUuid(uuidv7())).toBe(true);
    expect(isUuid("0189ABCD-EF01-7ABC-8DEF-0123456789AB")).toBe(true);
  });

  it("refuses anything else", () => {
    for (const value of [
      "",
      "not-a-uuid",
      "0189abcd-ef01-7abc-8def-0123456789a",
      "0189abcdef017abc8def0123456789ab",
      "{0189abcd-ef01-7abc-8def-0123456789ab}",
      " 0189abcd-ef01-7abc-8def-0123456789ab",
      "0189abcd-ef01-7abc-8def-0123456789ab\n",
      "g189abcd-ef01-7abc-8def-0123456789ab",
    ]) {
      expect(isUuid(value), value).toBe(false);
    }
  });
});
