import { describe, expect, it } from "vitest";
import { Lru } from "./lru.js";

describe("Lru", () => {
  it("evicts the least recently used entry beyond maxEntries", () => {
    const evicted: string[] = [];
    const lru = new Lru<string, number>({ maxEntries: 2, onEvict: (k) => evicted.push(k) });
    lru.set("a", 1);
    lru.set("b", 2);
    expect(lru.get("a")).toBe(1); // a is now the most recent
    lru.set("c", 3);
    expect([...lru.keys()]).toEqual(["a", "c"]);
    expect(lru.has("b")).toBe(false);
    expect(evicted).toEqual(["b"]);
    expect(lru.count).toBe(2);
  });

  it("peek does not change the order", () => {
    const lru = new Lru<string, number>({ maxEntries: 2 });
    lru.set("a", 1);
    lru.set("b", 2);
    expect(lru.peek("a")).toBe(1);
    lru.set("c", 3);
    expect([...lru.keys()]).toEqual(["b", "c"]);
  });

  it("bounds the total size, evicting as many entries as needed", () => {
    const lru = new Lru<string, Uint8Array>({ maxSize: 10, sizeOf: (b) => b.byteLength });
    lru.set("a", new Uint8Array(4));
    lru.set("b", new Uint8Array(4));
    expect(lru.size).toBe(8);
    lru.set("c", new Uint8Array(7));
    expect([...lru.keys()]).toEqual(["c"]);
    expect(lru.size).toBe(7);
  });

  it("refuses a value larger than maxSize on its own and drops the key's old value", () => {
    const lru = new Lru<string, Uint8Array>({ maxSize: 10, sizeOf: (b) => b.byteLength });
    lru.set("a", new Uint8Array(4));
    lru.set("b", new Uint8Array(4));
    expect(lru.set("a", new Uint8Array(11))).toBe(false);
    expect(lru.has("a")).toBe(false);
    expect(lru.get("b")).toHaveLength(4);
    expect(lru.size).toBe(4);
  });

  it("replacing a value updates the size without evicting others", () => {
    const lru = new Lru<string, Uint8Array>({ maxSize: 10, sizeOf: (b) => b.byteLength });
    lru.set("a", new Uint8Array(4));
    lru.set("b", new Uint8Array(4));
    lru.set("a", new Uint8Array(6));
    expect([...lru.keys()]).toEqual(["b", "a"]);
    expect(lru.size).toBe(10);
  });

  it("delete and clear", () => {
    const lru = new Lru<string, number>();
    lru.set("a", 1);
    lru.set("b", 2);
    expect(lru.delete("a")).toBe(true);
    expect(lru.delete("a")).toBe(false);
    expect(lru.size).toBe(1);
    lru.clear();
    expect(lru.count).toBe(0);
    expect(lru.size).toBe(0);
  });

  it("rejects invalid bounds and sizes", () => {
    expect(() => new Lru({ maxEntries: -1 })).toThrow(RangeError);
    expect(() => new Lru({ maxSize: Number.NaN })).toThrow(RangeError);
    const lru = new Lru<string, number>({ sizeOf: (v) => v });
    expect(() => lru.set("a", -1)).toThrow(RangeError);
  });
});
