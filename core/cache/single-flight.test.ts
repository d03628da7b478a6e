import { describe, expect, it } from "vitest";
import { SingleFlight } from "./single-flight.js";

function deferred<T>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe("SingleFlight", () => {
  it("shares one call among concurrent runs of a key", async () => {
    const flight = new SingleFlight<string, number>();
    const d = deferred<number>();
    let calls = 0;
    const fn = () => {
      calls += 1;
      return d.promise;
    };
    const runs = [flight.run("a", fn), flight.run("a", fn), flight.run("a", fn)];
    expect(flight.has("a")).toBe(true);
    d.resolve(7);
    expect(await Promise.all(runs)).toEqual([7, 7, 7]);
    expect(calls).toBe(1);
    expect(flight.has("a")).toBe(false);
  });

  it("keeps keys apart", async () => {
    const flight = new SingleFlight<string, string>();
    const [a, b] = await Promise.all([
      flight.run("a", async () => "A"),
      flight.run("b", async () => "B"),
    ]);
    expect([a, b]).toEqual(["A", "B"]);
  });

  it("shares a failure, then calls again", async () => {
    const flight = new SingleFlight<string, number>();
    let calls = 0;
    const failing = async () => {
      calls += 1;
      throw new Error("boom");
    };
    const results = await Promise.allSettled([flight.run("a", failing), flight.run("a", failing)]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(calls).toBe(1);
    expect(flight.size).toBe(0);
    expect(await flight.run("a", async () => 1)).toBe(1);
  });

  it("turns a synchronous throw into a rejection", async () => {
    const flight = new SingleFlight<string, number>();
    await expect(
      flight.run("a", () => {
        throw new Error("sync");
      }),
    ).rejects.toThrow("sync");
    expect(flight.has("a")).toBe(false);
  });
});
