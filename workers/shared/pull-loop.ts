/**
 * The workers' pull loop skeleton: set the consumers up, consume until stopped, and when
 * either fails (NATS away, the stream or a consumer deleted) wait with backoff and set
 * them up again. A worker is ready while consuming; `ready` resolves the first time.
 * What is pulled and how it is handled stays in each worker.
 */
export interface PullLoopHooks<Consumers> {
  isStopping(): boolean;
  /** Ensures the streams and consumers; what it returns is handed to `consume`. */
  setUp(): Promise<Consumers>;
  /** Pulls until the worker stops (returns) or pulling fails (throws). */
  consume(consumers: Consumers): Promise<void>;
  /** Called when consuming starts after not being ready (the first time, after a failure). */
  onConsuming(consumers: Consumers): void;
  /** Called for each failure while not stopping, before the backoff. */
  onFailure(error: unknown, attempt: number): void;
}

export interface PullLoop {
  /** Resolves once the consumers exist and messages are being pulled. */
  ready: Promise<void>;
  isReady(): boolean;
  /** Ends once stopping (or at once, when it fails while stopping). */
  running: Promise<void>;
}

export function startPullLoop<Consumers>(hooks: PullLoopHooks<Consumers>): PullLoop {
  let isReady = false;
  let markReady: () => void = () => {};
  const ready = new Promise<void>((resolve) => {
    markReady = resolve;
  });
  const running = (async () => {
    for (let attempt = 0; !hooks.isStopping(); attempt++) {
      try {
        const consumers = await hooks.setUp();
        if (!isReady) hooks.onConsuming(consumers);
        isReady = true;
        markReady();
        attempt = 0;
        await hooks.consume(consumers);
      } catch (error) {
        if (hooks.isStopping()) return;
        isReady = false;
        hooks.onFailure(error, attempt);
        // 0.5 s doubling up to 30 s: a NATS restart is picked up soon, an outage not hammered.
        await sleep(Math.min(30_000, 500 * 2 ** Math.min(attempt, 6)));
      }
    }
  })();
  return { ready, isReady: () => isReady, running };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
