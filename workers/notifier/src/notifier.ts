/**
 * The notifier: calls the tenants' webhooks for governance events (budget thresholds,
 * approvals, policy violations) read from FULCRUM_EXECUTION_EVENTS. Runs in-process for
 * tests; main.ts is the container's entry.
 *
 * @example
 * const notifier = await startNotifier(parseNotifierConfig(process.env));
 * await notifier.ready;
 * await notifier.stop();
 */
import type { JsMsg } from "@nats-io/jetstream";
import { withDeadline } from "../../../core/async/deadline.js";
import { EVENTS_STREAM } from "../../../core/audit/event-subject.js";
import { createLogger, type Logger } from "../../../core/logging/logger.js";
import { createDb } from "../../../db/client.js";
import { connectWorkerNats } from "../../shared/nats.js";
import { startPullLoop } from "../../shared/pull-loop.js";
import type { WorkerHandle } from "../../shared/run-worker.js";
import type { NotifierConfig } from "./config.js";
import { ensureNotifierConsumers, type NotifierConsumer } from "./consumer.js";
import { deliver } from "./deliver.js";
import { eventHandler } from "./event-handler.js";
import { createNotifierMetrics, M } from "./metrics.js";
import { notifierStore } from "./store.js";

export interface NotifierHealth {
  status: "healthy" | "unhealthy";
  nats: { connected: boolean; server: string | undefined };
  postgres: { ok: boolean; error?: string };
  consumers: { ready: boolean; pending: number | undefined; ack_pending: number | undefined };
}

/** `stop()` finishes the deliveries under way before closing. */
export type Notifier = WorkerHandle<NotifierHealth>;

const HEALTH_TIMEOUT_MS = 2000;
/** One pull's longest wait: bounds how long a graceful stop waits for the pulls. */
const FETCH_EXPIRES_MS = 5000;

export async function startNotifier(
  config: NotifierConfig,
  logger: Logger = createLogger("notifier"),
): Promise<Notifier> {
  const metrics = createNotifierMetrics();
  // No logger: the notifier has never logged NATS disconnects (/healthz says so).
  const nats = await connectWorkerNats(config.natsUrl, "fulcrum-notifier");
  const { nc, jsm, js } = nats;
  const pg = createDb({
    connectionString: config.databaseUrl,
    ...(config.pgWsProxyPort !== undefined ? { localProxyPort: config.pgWsProxyPort } : {}),
    max: Math.min(16, config.concurrency + 2),
    onIdleError: (error) => logger.error("postgres idle connection failed", { error }),
  });
  const handle = eventHandler({
    store: notifierStore(pg.db),
    deliver: (url, request) =>
      deliver(url, request, {
        timeoutMs: config.requestTimeoutMs,
        allowPrivate: config.allowPrivateWebhooks,
      }),
    metrics,
    logger,
    backoffScale: config.backoffScale,
    // Longer than one attempt (DNS + request) can take, so a lease only lapses on a crash.
    leaseMs: config.requestTimeoutMs + 30_000,
  });

  let stopping = false;
  const inFlight = new Set<Promise<void>>();
  // Pull loops waiting for a free slot (one per consumer at most).
  const waiting = new Set<() => void>();
  const freed = () => {
    for (const wake of waiting) wake();
    waiting.clear();
  };

  const run = (msg: JsMsg) => {
    // A slow endpoint must not look like a dead notifier to JetStream.
    const heartbeat = setInterval(() => msg.working(), Math.max(1000, config.ackWaitMs / 3));
    const task: Promise<void> = handle(msg)
      .catch((error: unknown) => {
        metrics.increment(M.errors, { where: "handler" });
        logger.error("event handling failed unexpectedly; redelivering", { error });
        msg.nak(5000);
      })
      .finally(() => {
        clearInterval(heartbeat);
        inFlight.delete(task);
        freed();
      });
    inFlight.add(task);
  };
  const slotFree = async () => {
    while (inFlight.size >= config.concurrency && !stopping) {
      await new Promise<void>((resolve) => waiting.add(resolve));
    }
  };

  /** One consumer's loop: bounded fetches while slots are free; set up again on errors. */
  const pull = async (consumer: NotifierConsumer) => {
    const source = await js.consumers.get(EVENTS_STREAM, consumer.name);
    while (!stopping) {
      await slotFree();
      if (stopping) return;
      const fetched = await source.fetch({
        max_messages: Math.max(1, config.concurrency - inFlight.size),
        expires: FETCH_EXPIRES_MS,
      });
      for await (const msg of fetched) run(msg);
    }
  };
  const startPulling = () =>
    startPullLoop({
      isStopping: () => stopping,
      setUp: () => ensureNotifierConsumers(jsm, config.streams, config),
      consume: async (consumers) => {
        await Promise.all(consumers.map(pull));
      },
      onConsuming: (consumers) =>
        logger.info("consuming", { consumers: consumers.map((c) => c.name) }),
      onFailure: (error, attempt) => {
        metrics.increment(M.errors, { where: "consumer" });
        logger.error("pulling failed; setting the consumers up again", { error, attempt });
      },
    });

  let lastLag: { pending: number; ackPending: number } | undefined;
  const refreshStats = async () => {
    try {
      let pending = 0;
      let ackPending = 0;
      for await (const info of jsm.consumers.list(EVENTS_STREAM)) {
        if (!info.name.startsWith("notifier-")) continue;
        pending += info.num_pending;
        ackPending += info.num_ack_pending;
      }
      lastLag = { pending, ackPending };
      metrics.set(M.pending, pending);
      metrics.set(M.ackPending, ackPending);
    } catch {
      // NATS is away; /healthz says so.
    }
  };
  const statsTimer = setInterval(() => void refreshStats(), config.statsIntervalMs);
  statsTimer.unref();
  const pulling = startPulling();

  let stopped: Promise<void> | undefined;
  return {
    ready: pulling.ready,
    metrics,
    async health() {
      let postgres: NotifierHealth["postgres"] = { ok: true };
      try {
        await withDeadline(pg.pool.query("select 1"), HEALTH_TIMEOUT_MS, "no answer");
      } catch (error) {
        postgres = { ok: false, error: (error as Error).message };
      }
      const natsHealth = nats.health();
      const ready = pulling.isReady();
      return {
        status: natsHealth.connected && postgres.ok && ready ? "healthy" : "unhealthy",
        nats: natsHealth,
        postgres,
        consumers: { ready, pending: lastLag?.pending, ack_pending: lastLag?.ackPending },
      };
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        freed();
        clearInterval(statsTimer);
        await withDeadline(pulling.running, FETCH_EXPIRES_MS + 5000).catch(() => {});
        // Deliveries under way finish and are recorded (each is bounded by its timeout).
        await Promise.all(inFlight);
        await withDeadline(nc.flush(), 5000).catch(() => {});
        await nc.close();
        await pg.close();
        logger.info("stopped");
      })();
      return stopped;
    },
  };
}
