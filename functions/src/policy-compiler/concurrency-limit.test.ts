import { describe, expect, it } from "vitest";
import { createConcurrencyLimit } from "./concurrency-limit.js";

/** A task that finishes when the test says so. */
function gate() {
  let open: () => void = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

describe("createConcurrencyLimit", () => {
  it("runs at most maxConcurrent tasks, queues maxQueued more in order, refuses the rest", async () => {
    const limit = createConcurrencyLimit({
      maxConcurrent: 2,
      maxQueued: 2,
      onFull: () => new Error("full"),
    });
    const gates = Array.from({ length: 4 }, gate);
    const started: number[] = [];
    const runs = gates.map((g, i) =>
      limit.run(async () => {
        started.push(i);
        await g.opened;
        return i;
      }),
    );
    await tick();
    expect(started).toEqual([0, 1]);
    expect([limit.active, limit.queued]).toEqual([2, 2]);
    await expect(limit.run(async () => "fifth")).rejects.toThrow("full");

    gates[1]?.open();
    expect(await runs[1]).toBe(1);
    await tick();
    expect(started).toEqual([0, 1, 2]);
    expect([limit.active, limit.queued]).toEqual([2, 1]);

    gates[0]?.open();
    gates[2]?.open();
    gates[3]?.open();
    expect(await Promise.all(runs)).toEqual([0, 1, 2, 3]);
    expect(started).toEqual([0, 1, 2, 3]);
    expect([limit.active, limit.queued]).toEqual([0, 0]);
  });

  it("frees the turn of a task that fails", async () => {
    const limit = createConcurrencyLimit({
      maxConcurrent: 1,
      maxQueued: 1,
      onFull: () => new Error("full"),
    });
    const failing = limit.run(async () => {
      throw new Error("boom");
    });
    const after = limit.run(async () => "ran");
    await expect(failing).rejects.toThrow("boom");
    expect(await after).toBe("ran");
    expect(limit.active).toBe(0);
  });
});
