import { describe, expect, it } from "vitest";
import { newDecisionId, uuidv7 } from "./uuidv7.js";

describe("uuidv7", () => {
  it("has version 7, the RFC variant and the timestamp in its first 48 bits", () => {
    const id = uuidv7(0x0189_abcd_ef01);
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(id.slice(0, 13)).toBe("0189abcd-ef01");
  });

  it("sorts by creation time across milliseconds", () => {
    const earlier = uuidv7(1_700_000_000_000);
    const later = uuidv7(1_700_000_000_001);
    expect(earlier < later).toBe(true);
  });

  it("counts up within one millisecond, so ids keep their minting order", () => {
    const ids = Array.from({ length: 500 }, () => uuidv7(1_800_000_000_000));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(500);
  });

  it("does not repeat", () => {
    const ids = new Set(Array.from({ length: 1000 }, () => uuidv7(42)));
    expect(ids.size).toBe(1000);
  });

  it("prefixes decision ids", () => {
    expect(newDecisionId()).toMatch(/^dec_[0-9a-f-]{36}$/);
  });
});
