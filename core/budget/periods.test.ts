import { describe, expect, it } from "vitest";
import { BudgetPeriod } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import {
  BUDGET_PERIODS,
  counterExpiryMs,
  periodFromProto,
  periodToProto,
  periodWindow,
} from "./periods.js";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const window = (...args: Parameters<typeof periodWindow>) => {
  const w = periodWindow(...args);
  return [iso(w.startMs), iso(w.endMs)];
};
const at = (text: string) => Date.parse(text);

describe("periodWindow: UTC calendar periods", () => {
  it("hours and days", () => {
    expect(window("HOURLY", {}, at("2026-11-24T18:59:59.999Z"))).toEqual([
      "2026-11-24T18:00:00.000Z",
      "2026-11-24T19:00:00.000Z",
    ]);
    expect(window("HOURLY", {}, at("2026-11-24T19:00:00.000Z"))[0]).toBe(
      "2026-11-24T19:00:00.000Z",
    );
    expect(window("DAILY", {}, at("2026-12-31T23:59:59.999Z"))).toEqual([
      "2026-12-31T00:00:00.000Z",
      "2027-01-01T00:00:00.000Z",
    ]);
  });

  it("ISO weeks start on Monday, across month and year ends", () => {
    // Tuesday 2026-11-24 → Monday 2026-11-23.
    expect(window("WEEKLY", {}, at("2026-11-24T12:00:00Z"))).toEqual([
      "2026-11-23T00:00:00.000Z",
      "2026-11-30T00:00:00.000Z",
    ]);
    // Monday at midnight opens a week; the Sunday before belongs to the previous one.
    expect(window("WEEKLY", {}, at("2026-11-30T00:00:00Z"))[0]).toBe("2026-11-30T00:00:00.000Z");
    expect(window("WEEKLY", {}, at("2026-11-29T23:59:59.999Z"))[0]).toBe(
      "2026-11-23T00:00:00.000Z",
    );
    // Friday 2027-01-01 is in the week of Monday 2026-12-28.
    expect(window("WEEKLY", {}, at("2027-01-01T08:00:00Z"))).toEqual([
      "2026-12-28T00:00:00.000Z",
      "2027-01-04T00:00:00.000Z",
    ]);
  });

  it("months (28 to 31 days, leap February)", () => {
    expect(window("MONTHLY", {}, at("2028-02-29T23:00:00Z"))).toEqual([
      "2028-02-01T00:00:00.000Z",
      "2028-03-01T00:00:00.000Z",
    ]);
    expect(window("MONTHLY", {}, at("2026-12-15T00:00:00Z"))[1]).toBe("2027-01-01T00:00:00.000Z");
  });

  it("quarters start in January, April, July, October", () => {
    const cases: [string, string, string][] = [
      ["2026-01-01T00:00:00Z", "2026-01-01", "2026-04-01"],
      ["2026-03-31T23:59:59.999Z", "2026-01-01", "2026-04-01"],
      ["2026-04-01T00:00:00Z", "2026-04-01", "2026-07-01"],
      ["2026-08-15T00:00:00Z", "2026-07-01", "2026-10-01"],
      ["2026-12-31T23:59:59Z", "2026-10-01", "2027-01-01"],
    ];
    for (const [now, start, end] of cases) {
      expect(window("QUARTERLY", {}, at(now)), now).toEqual([
        `${start}T00:00:00.000Z`,
        `${end}T00:00:00.000Z`,
      ]);
    }
  });

  it("years", () => {
    expect(window("YEARLY", {}, at("2026-12-31T23:59:59.999Z"))).toEqual([
      "2026-01-01T00:00:00.000Z",
      "2027-01-01T00:00:00.000Z",
    ]);
    expect(window("YEARLY", {}, at("2027-01-01T00:00:00Z"))[0]).toBe("2027-01-01T00:00:00.000Z");
  });
});

describe("periodWindow: CUSTOM and INFINITE", () => {
  const anchorMs = at("2026-11-24T10:07:13.500Z");

  it("counts CUSTOM periods from the anchor, not from the clock", () => {
    expect(window("CUSTOM", { customSeconds: 600, anchorMs }, anchorMs)).toEqual([
      "2026-11-24T10:07:13.500Z",
      "2026-11-24T10:17:13.500Z",
    ]);
    expect(window("CUSTOM", { customSeconds: 600, anchorMs }, anchorMs + 599_999)[0]).toBe(
      "2026-11-24T10:07:13.500Z",
    );
    expect(window("CUSTOM", { customSeconds: 600, anchorMs }, anchorMs + 600_000)[0]).toBe(
      "2026-11-24T10:17:13.500Z",
    );
    // 3 days of 7-day periods later: still the first period.
    const week = periodWindow(
      "CUSTOM",
      { customSeconds: 7 * 86_400, anchorMs },
      anchorMs + 3 * 86_400_000,
    );
    expect(week.startMs).toBe(anchorMs);
  });

  it("places times before the anchor in earlier periods", () => {
    expect(window("CUSTOM", { customSeconds: 60, anchorMs }, anchorMs - 1)).toEqual([
      "2026-11-24T10:06:13.500Z",
      "2026-11-24T10:07:13.500Z",
    ]);
  });

  it("refuses CUSTOM without a positive length", () => {
    expect(() => periodWindow("CUSTOM", { anchorMs }, anchorMs)).toThrow(/customSeconds > 0/);
    expect(() => periodWindow("CUSTOM", { customSeconds: 0, anchorMs }, anchorMs)).toThrow(
      RangeError,
    );
    expect(() => periodWindow("CUSTOM", { customSeconds: 1.5, anchorMs }, anchorMs)).toThrow(
      RangeError,
    );
  });

  it("INFINITE never resets", () => {
    expect(periodWindow("INFINITE", {}, at("2026-11-24T00:00:00Z"))).toEqual({
      startMs: 0,
      endMs: null,
    });
  });

  it("every window contains now and is half-open", () => {
    const now = at("2026-02-28T23:30:00Z");
    for (const period of BUDGET_PERIODS) {
      const w = periodWindow(period, { customSeconds: 3600, anchorMs }, now);
      expect(w.startMs, period).toBeLessThanOrEqual(now);
      if (w.endMs !== null) {
        expect(w.endMs, period).toBeGreaterThan(now);
        expect(periodWindow(period, { customSeconds: 3600, anchorMs }, w.endMs).startMs).toBe(
          w.endMs,
        );
      }
    }
  });
});

describe("proto mapping", () => {
  it("round-trips every period and rejects UNSPECIFIED", () => {
    for (const period of BUDGET_PERIODS)
      expect(periodFromProto(periodToProto(period))).toBe(period);
    expect(periodToProto("WEEKLY")).toBe(BudgetPeriod.WEEKLY);
    expect(periodFromProto(BudgetPeriod.UNSPECIFIED)).toBeUndefined();
    expect(periodFromProto(99 as BudgetPeriod)).toBeUndefined();
  });
});

describe("counterExpiryMs", () => {
  it("keeps a period's counter a day past the period, one without a period 30 days past now", () => {
    const day = 24 * 3_600_000;
    expect(counterExpiryMs(10 * day, 3 * day)).toBe(11 * day);
    expect(counterExpiryMs(null, 3 * day)).toBe(33 * day);
  });
});
