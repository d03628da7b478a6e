import { describe, expect, it } from "vitest";
import {
  costMicros,
  DEFAULT_MODEL_PRICES,
  estimateCostMicros,
  FALLBACK_MODEL_PRICE,
  isModelPrice,
  microsToUsd,
  priceFor,
  usdToMicros,
} from "./prices.js";

describe("costMicros", () => {
  it("is tokens × USD per million, in micro-USD, exactly", () => {
    expect(costMicros([2.5, 10], 1000, 500)).toBe(7500);
    // 0.15 × 1000 is 150.00000000000003 in floating point: must not round up to 151.
    expect(costMicros([0.15, 0.6], 1000, 1000)).toBe(750);
    expect(costMicros([0.1, 0.2], 3, 0)).toBe(1); // 0.3 µUSD → charged as 1
    expect(costMicros([0, 0], 10 ** 9, 10 ** 9)).toBe(0);
  });

  it("rounds fractions of a micro-USD up, never down", () => {
    expect(costMicros([0.000001, 0], 1, 0)).toBe(1);
    expect(costMicros([1.234567, 0], 1, 0)).toBe(2);
    expect(costMicros([1.5, 0], 2, 0)).toBe(3);
  });

  it("stays exact for large counts (beyond 2^53 intermediate products)", () => {
    // 1e9 tokens at $75/M = $75,000 = 75e9 micro-USD.
    expect(costMicros([15, 75], 0, 1_000_000_000)).toBe(75_000_000_000);
    expect(costMicros([123.456789, 0], 999_999_999, 0)).toBe(123_456_788_877);
  });
});

describe("estimates and conversion", () => {
  it("reserves unknown splits at the dearer price", () => {
    expect(estimateCostMicros([3, 15], 1000)).toBe(15_000);
    expect(estimateCostMicros([20, 5], 1000)).toBe(20_000);
    expect(estimateCostMicros([3, 15], 1000)).toBeGreaterThanOrEqual(costMicros([3, 15], 400, 600));
  });

  it("converts USD", () => {
    expect(usdToMicros(0.0075)).toBe(7500);
    expect(usdToMicros(1.1)).toBe(1_100_000);
    expect(microsToUsd(7500)).toBe(0.0075);
  });
});

describe("priceFor", () => {
  it("takes the exact model, then the longest dated prefix, then the fallback", () => {
    expect(priceFor(DEFAULT_MODEL_PRICES, FALLBACK_MODEL_PRICE, "gpt-4o-mini")).toEqual([
      0.15, 0.6,
    ]);
    expect(priceFor(DEFAULT_MODEL_PRICES, FALLBACK_MODEL_PRICE, "gpt-4o-2024-08-06")).toEqual([
      2.5, 10,
    ]);
    expect(priceFor(DEFAULT_MODEL_PRICES, FALLBACK_MODEL_PRICE, "gpt-4o-mini-2024-07-18")).toEqual([
      0.15, 0.6,
    ]);
    expect(priceFor(DEFAULT_MODEL_PRICES, FALLBACK_MODEL_PRICE, "gpt-4oX")).toEqual(
      FALLBACK_MODEL_PRICE,
    );
    expect(priceFor(DEFAULT_MODEL_PRICES, [9, 9], "unknown-model")).toEqual([9, 9]);
    expect(priceFor({ ...DEFAULT_MODEL_PRICES, "gpt-4o": [1, 1] }, [9, 9], "gpt-4o")).toEqual([
      1, 1,
    ]);
    // Inherited object properties are not prices.
    expect(priceFor(DEFAULT_MODEL_PRICES, [9, 9], "toString")).toEqual([9, 9]);
  });

  it("checks price shapes", () => {
    expect(isModelPrice([1, 2])).toBe(true);
    expect(isModelPrice([1])).toBe(false);
    expect(isModelPrice([-1, 2])).toBe(false);
    expect(isModelPrice([1, Number.NaN])).toBe(false);
    expect(isModelPrice([1, 2e9])).toBe(false);
    expect(isModelPrice("1,2")).toBe(false);
    for (const price of Object.values(DEFAULT_MODEL_PRICES)) expect(isModelPrice(price)).toBe(true);
  });
});
