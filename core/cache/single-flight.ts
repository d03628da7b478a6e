/**
 * Collapses concurrent calls for one key into one: while a call for `key` is in flight,
 * `run(key, fn)` returns its promise instead of calling `fn` again. Once it settles
 * (either way) the next `run` calls `fn` anew; nothing is cached. Web-standard only.
 *
 * @example
 * const loads = new SingleFlight<string, Bundle>();
 * const bundle = await loads.run(tenantId, () => loadBundle(tenantId));
 */
export class SingleFlight<K, V> {
  private readonly inFlight = new Map<K, Promise<V>>();

  run(key: K, fn: () => Promise<V>): Promise<V> {
    const pending = this.inFlight.get(key);
    if (pending !== undefined) return pending;
    let promise: Promise<V>;
    try {
      promise = Promise.resolve(fn());
    } catch (error) {
      promise = Promise.reject(error);
    }
    const tracked = promise.finally(() => {
      if (this.inFlight.get(key) === tracked) this.inFlight.delete(key);
    });
    this.inFlight.set(key, tracked);
    return tracked;
  }

  /** Whether a call for `key` is in flight. */
  has(key: K): boolean {
    return this.inFlight.has(key);
  }

  /** How many keys have a call in flight. */
  get size(): number {
    return this.inFlight.size;
  }
}
