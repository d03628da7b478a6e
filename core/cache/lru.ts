/**
 * A least-recently-used map bounded by entry count and, optionally, by a total size
 * (e.g. bytes). Web-standard only (core is compiled for Workers too): a `Map` keeps
 * insertion order, so re-inserting on access makes its first key the least recent.
 *
 * @example
 * const wasm = new Lru<string, Uint8Array>({ maxSize: 32 << 20, sizeOf: (b) => b.byteLength });
 * wasm.set(sha, bytes);
 */
export interface LruOptions<K, V> {
  /** Most entries kept; default unbounded. */
  maxEntries?: number;
  /** Most total size kept (as `sizeOf` measures); default unbounded. */
  maxSize?: number;
  /** The size of one value; default 1 (then `maxSize` bounds the entry count too). */
  sizeOf?: (value: V) => number;
  /** Called with every entry evicted to make room (not on `delete` or replacement). */
  onEvict?: (key: K, value: V) => void;
}

export class Lru<K, V> {
  private readonly entries = new Map<K, { value: V; size: number }>();
  private total = 0;
  private readonly maxEntries: number;
  private readonly maxSize: number;
  private readonly sizeOf: (value: V) => number;
  private readonly onEvict: ((key: K, value: V) => void) | undefined;

  constructor(options: LruOptions<K, V> = {}) {
    this.maxEntries = bound("maxEntries", options.maxEntries);
    this.maxSize = bound("maxSize", options.maxSize);
    this.sizeOf = options.sizeOf ?? (() => 1);
    this.onEvict = options.onEvict;
  }

  /** The value of `key`, marking it most recently used; undefined when absent. */
  get(key: K): V | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** The value of `key` without touching its recency. */
  peek(key: K): V | undefined {
    return this.entries.get(key)?.value;
  }

  has(key: K): boolean {
    return this.entries.has(key);
  }

  /**
   * Stores `value` as the most recently used entry, evicting the least recent ones
   * until the bounds hold. A value larger than `maxSize` alone is not stored (and any
   * older value of `key` is dropped); returns whether the value was stored.
   */
  set(key: K, value: V): boolean {
    const size = this.sizeOf(value);
    if (!(size >= 0)) throw new RangeError(`Lru: sizeOf returned ${size}`);
    this.delete(key);
    if (size > this.maxSize) return false;
    this.entries.set(key, { value, size });
    this.total += size;
    for (const [oldest, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.total <= this.maxSize) break;
      this.entries.delete(oldest);
      this.total -= entry.size;
      this.onEvict?.(oldest, entry.value);
    }
    return true;
  }

  delete(key: K): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined) return false;
    this.entries.delete(key);
    this.total -= entry.size;
    return true;
  }

  clear(): void {
    this.entries.clear();
    this.total = 0;
  }

  /** The number of entries. */
  get count(): number {
    return this.entries.size;
  }

  /** The total size of the entries (their count when no `sizeOf` was given). */
  get size(): number {
    return this.total;
  }

  /** Keys from least to most recently used. */
  keys(): IterableIterator<K> {
    return this.entries.keys();
  }
}

function bound(name: string, value: number | undefined): number {
  if (value === undefined) return Number.POSITIVE_INFINITY;
  if (!(value >= 0)) throw new RangeError(`Lru: ${name} must be >= 0, not ${value}`);
  return value;
}
