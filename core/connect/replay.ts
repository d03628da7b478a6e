/**
 * Puts back what a preflight already read from a stream: yields `head`, then
 * the rest of the iterator, and closes the iterator however iteration ends.
 */
export async function* replay<T>(head: readonly T[], rest: AsyncIterator<T>): AsyncIterable<T> {
  try {
    yield* head;
    for (;;) {
      const next = await rest.next();
      if (next.done) return;
      yield next.value;
    }
  } finally {
    await rest.return?.();
  }
}
