/**
 * Deadlines for calls to a dependency that may hang (Redis over REST): a timed-out
 * call rejects with {@link DeadlineExceededError}, whatever the call itself does later.
 * Web-standard only.
 */

export class DeadlineExceededError extends Error {
  override readonly name = "DeadlineExceededError";
}

/** One timer bounding several calls (e.g. every Redis read of one load). */
export class Deadline {
  private readonly timer: ReturnType<typeof setTimeout>;
  private readonly expired: Promise<never>;

  constructor(ms: number, what = "no answer") {
    let expire!: (error: Error) => void;
    this.expired = new Promise<never>((_, reject) => {
      expire = reject;
    });
    this.expired.catch(() => {});
    this.timer = setTimeout(() => expire(new DeadlineExceededError(`${what} within ${ms} ms`)), ms);
  }

  race<T>(call: Promise<T>): Promise<T> {
    return Promise.race([call, this.expired]);
  }

  clear(): void {
    clearTimeout(this.timer);
  }
}

/** `call`, or a DeadlineExceededError `"<what> within <ms> ms"` after `ms`. */
export async function withDeadline<T>(call: Promise<T>, ms: number, what?: string): Promise<T> {
  const deadline = new Deadline(ms, what);
  try {
    return await deadline.race(call);
  } finally {
    deadline.clear();
  }
}
