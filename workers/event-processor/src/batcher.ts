/**
 * Collects messages into batches by size and by time: {@link Batcher.next} resolves
 * with up to `maxSize` items as soon as that many are waiting, or when the oldest
 * waiting item has waited `maxWaitMs`. After {@link Batcher.close} it hands out what is
 * left, then undefined.
 */
export class Batcher<T> {
  private readonly items: T[] = [];
  private oldestAt = 0;
  private closed = false;
  private wake: (() => void) | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly maxSize: number,
    private readonly maxWaitMs: number,
  ) {}

  get size(): number {
    return this.items.length;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Adds one item; false (item not taken) once closed. */
  add(item: T): boolean {
    if (this.closed) return false;
    if (this.items.length === 0) this.oldestAt = performance.now();
    this.items.push(item);
    if (this.items.length >= this.maxSize) this.signal();
    else if (this.items.length === 1) this.arm(this.maxWaitMs);
    return true;
  }

  close(): void {
    this.closed = true;
    this.signal();
  }

  /** The next batch; undefined once closed and empty. */
  async next(): Promise<T[] | undefined> {
    for (;;) {
      const waited = performance.now() - this.oldestAt;
      if (
        this.items.length >= this.maxSize ||
        (this.items.length > 0 && (this.closed || waited >= this.maxWaitMs))
      ) {
        const batch = this.items.splice(0, this.maxSize);
        if (this.items.length > 0) {
          // What remains has waited at least since now; it goes out by maxWaitMs from here.
          this.oldestAt = performance.now();
          this.arm(this.maxWaitMs);
        }
        return batch;
      }
      if (this.closed) return undefined;
      if (this.items.length > 0) this.arm(this.maxWaitMs - waited);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  private arm(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.signal(), Math.max(0, ms));
  }

  private signal(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
