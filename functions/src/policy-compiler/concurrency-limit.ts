/**
 * At most `maxConcurrent` tasks at once; up to `maxQueued` more wait their turn (first
 * come, first served); beyond that `run` refuses at once with the error `onFull` makes.
 * The policy compiler wraps each compilation (two OPA processes in a row) in one.
 *
 * @example
 * const limit = createConcurrencyLimit({ maxConcurrent: 2, maxQueued: 16, onFull: () => new Error("busy") });
 * const wasm = await limit.run(() => build(source));
 */
export interface ConcurrencyLimit {
  run<T>(task: () => Promise<T>): Promise<T>;
  /** Tasks running now. */
  readonly active: number;
  /** Tasks waiting for a turn. */
  readonly queued: number;
}

export function createConcurrencyLimit(options: {
  maxConcurrent: number;
  maxQueued: number;
  onFull: () => Error;
}): ConcurrencyLimit {
  if (!(options.maxConcurrent >= 1)) throw new RangeError("maxConcurrent must be at least 1");
  let active = 0;
  const waiting: Array<() => void> = [];

  const next = () => {
    const start = waiting.shift();
    if (start) start();
    else active -= 1;
  };

  return {
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (active < options.maxConcurrent) {
        active += 1;
      } else {
        if (waiting.length >= options.maxQueued) throw options.onFull();
        // The finishing task hands its turn over: `active` stays as it is.
        await new Promise<void>((resolve) => waiting.push(resolve));
      }
      try {
        return await task();
      } finally {
        next();
      }
    },
    get active() {
      return active;
    },
    get queued() {
      return waiting.length;
    },
  };
}
