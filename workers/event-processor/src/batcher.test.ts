import { describe, expect, it } from "vitest";
import { Batcher } from "./batcher.js";

describe("Batcher", () => {
  it("hands out a full batch at once", async () => {
    const batcher = new Batcher<number>(3, 10_000);
    for (let i = 0; i < 7; i++) batcher.add(i);
    expect(await batcher.next()).toEqual([0, 1, 2]);
    expect(await batcher.next()).toEqual([3, 4, 5]);
    expect(batcher.size).toBe(1);
  });

  it("hands out a partial batch after the wait", async () => {
    const batcher = new Batcher<number>(100, 50);
    const started = performance.now();
    const next = batcher.next();
    batcher.add(1);
    batcher.add(2);
    expect(await next).toEqual([1, 2]);
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(45);
    expect(took).toBeLessThan(1000);
  });

  it("wakes a waiting reader when a batch fills up", async () => {
    const batcher = new Batcher<number>(2, 60_000);
    const next = batcher.next();
    batcher.add(1);
    batcher.add(2);
    expect(await next).toEqual([1, 2]);
  });

  it("drains what is left after close, then ends, and refuses new items", async () => {
    const batcher = new Batcher<number>(2, 60_000);
    batcher.add(1);
    batcher.add(2);
    batcher.add(3);
    batcher.close();
    expect(batcher.add(4)).toBe(false);
    expect(await batcher.next()).toEqual([1, 2]);
    expect(await batcher.next()).toEqual([3]);
    expect(await batcher.next()).toBeUndefined();
  });

  it("ends a waiting reader on close", async () => {
    const batcher = new Batcher<number>(2, 60_000);
    const next = batcher.next();
    batcher.close();
    expect(await next).toBeUndefined();
  });
});
