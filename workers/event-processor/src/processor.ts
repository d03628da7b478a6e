/**
 * The event processor: drains FULCRUM_EXECUTION_EVENTS into ClickHouse `events` (and
 * governance-relevant events into PostgreSQL `events`), in batches, acking each message
 * only once it is stored. Runs in-process for tests and the benchmark; main.ts is the
 * container's entry.
 *
 * @example
 * const processor = await startEventProcessor(parseEventProcessorConfig(process.env));
 * await processor.ready;
 * await processor.stop();
 */
import type { ClickHouseClient } from "@clickhouse/client";
import type { ConsumerInfo, JsMsg } from "@nats-io/jetstream";
import { withDeadline } from "../../../core/async/deadline.js";
import { EVENTS_STREAM } from "../../../core/audit/event-subject.js";
import { createLogger, type Logger } from "../../../core/logging/logger.js";
import { createClickHouse } from "../../../db/clickhouse/client.js";
import { createDb } from "../../../db/client.js";
import { connectWorkerNats } from "../../shared/nats.js";
import { startPullLoop } from "../../shared/pull-loop.js";
import type { WorkerHandle } from "../../shared/run-worker.js";
import { type BatchStores, processBatch } from "./batch.js";
import { Batcher } from "./batcher.js";
import type { EventProcessorConfig } from "./config.js";
import { CONSUMER_NAME, ensureConsumer } from "./consumer.js";
import { deadLetterPublisher } from "./dead-letter.js";
import { describeFailure } from "./failures.js";
import { governanceWriter } from "./governance-writer.js";
import { createProcessorMetrics, M } from "./metrics.js";

export interface ProcessorHealth {
  status: "healthy" | "unhealthy";
  nats: { connected: boolean; server: string | undefined };
  clickhouse: { ok: boolean; error?: string };
  postgres: { ok: boolean; error?: string };
  consumer: {
    ready: boolean;
    pending: number | undefined;
    ack_pending: number | undefined;
    redelivered: number | undefined;
  };
}

/** `stop()` stores and acks what was received before closing. */
export type EventProcessor = WorkerHandle<ProcessorHealth>;

const HEALTH_TIMEOUT_MS = 2000;
/**
 * How long one pull may wait for messages. Bounds how long a graceful stop waits for
 * the pull under way; long enough that the client's idle heartbeats (half of it) are
 * not missed while a large batch is being decoded.
 */
const FETCH_EXPIRES_MS = 5000;

export async function startEventProcessor(
  config: EventProcessorConfig,
  logger: Logger = createLogger("event-processor"),
): Promise<EventProcessor> {
  const metrics = createProcessorMetrics();
  const nats = await connectWorkerNats(config.natsUrl, "fulcrum-event-processor", logger);
  const { nc, jsm, js } = nats;
  const clickhouse: ClickHouseClient = createClickHouse(config.clickhouse);
  const pg = createDb({
    connectionString: config.databaseUrl,
    ...(config.pgWsProxyPort !== undefined ? { localProxyPort: config.pgWsProxyPort } : {}),
    max: 4,
    onIdleError: (error) =>
      logger.error("postgres idle connection failed", { error: describeFailure(error) }),
  });

  const stores: BatchStores = {
    insertEvents: async (rows) => {
      await clickhouse.insert({ table: "events", values: rows, format: "JSONEachRow" });
    },
    writeGovernance: governanceWriter(pg.db),
    deadLetter: deadLetterPublisher(js),
  };

  const batcher = new Batcher<JsMsg>(config.batchMaxEvents, config.batchMaxWaitMs);
  let stopping = false;
  let lastInfo: ConsumerInfo | undefined;

  /**
   * Pulls with bounded fetches (up to a batch, at most FETCH_EXPIRES_MS each) until
   * stopped, feeding the batcher; sets the consumer up again when it disappears. A
   * fetch is always read to its end, so a graceful stop strands no message: whatever
   * the server sent is stored and acked before the process exits (with a long-lived
   * `consume()`, messages in flight when it closes wait out ack_wait).
   */
  const startPulling = () =>
    startPullLoop({
      isStopping: () => stopping,
      setUp: async () => {
        await ensureConsumer(jsm, config.streams, config);
        return js.consumers.get(EVENTS_STREAM, CONSUMER_NAME);
      },
      consume: async (consumer) => {
        while (!stopping) {
          const fetched = await consumer.fetch({
            max_messages: config.batchMaxEvents,
            expires: FETCH_EXPIRES_MS,
          });
          for await (const msg of fetched) batcher.add(msg);
        }
      },
      onConsuming: () =>
        logger.info("consuming", { stream: EVENTS_STREAM, consumer: CONSUMER_NAME }),
      onFailure: (error, attempt) => {
        metrics.increment(M.errors, { where: "consumer" });
        logger.error("pulling failed; setting the consumer up again", {
          error: describeFailure(error),
          attempt,
        });
      },
    });

  const storeBatch = async (batch: JsMsg[]) => {
    // A slow insert must not look like a dead processor: tell JetStream the batch is in
    // progress, so ack_wait can stay short and a crashed processor's messages come back
    // soon.
    const heartbeat = setInterval(
      () => {
        for (const msg of batch) msg.working();
      },
      Math.max(500, config.ackWaitMs / 3),
    );
    try {
      await processBatch(batch, stores, {
        maxDeliver: config.maxDeliver,
        metrics,
        logger,
        faultAckDelayMs: config.faultAckDelayMs,
      });
    } catch (error) {
      // processBatch handles store failures itself; this is a bug, not an outage.
      metrics.increment(M.errors, { where: "batch" });
      logger.error("batch failed unexpectedly; redelivering", { error });
      for (const msg of batch) msg.nak(1000);
    } finally {
      clearInterval(heartbeat);
    }
  };

  /** Up to batchConcurrency batches at once; order does not matter to the stores. */
  const batchLoop = async () => {
    const inFlight = new Set<Promise<void>>();
    for (let batch = await batcher.next(); batch; batch = await batcher.next()) {
      const storing: Promise<void> = storeBatch(batch).finally(() => inFlight.delete(storing));
      inFlight.add(storing);
      if (inFlight.size >= config.batchConcurrency) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  };

  const refreshStats = async () => {
    try {
      lastInfo = await jsm.consumers.info(EVENTS_STREAM, CONSUMER_NAME);
      metrics.set(M.pending, lastInfo.num_pending);
      metrics.set(M.ackPending, lastInfo.num_ack_pending);
      metrics.set(M.consumerRedelivered, lastInfo.num_redelivered);
    } catch {
      // NATS is away; /healthz already says so.
    }
  };
  const statsTimer = setInterval(() => void refreshStats(), config.statsIntervalMs);
  statsTimer.unref();

  const pulling = startPulling();
  const batching = batchLoop();

  const probe = async (check: () => Promise<unknown>) => {
    try {
      await withDeadline(check(), HEALTH_TIMEOUT_MS, "no answer");
      return { ok: true };
    } catch (error) {
      return { ok: false, error: describeFailure(error) };
    }
  };

  let stopped: Promise<void> | undefined;
  return {
    ready: pulling.ready,
    metrics,
    async health() {
      const [ch, pgHealth] = await Promise.all([
        probe(async () => {
          const result = await clickhouse.ping();
          if (!result.success) throw result.error;
        }),
        probe(() => pg.pool.query("select 1")),
      ]);
      const natsHealth = nats.health();
      const isReady = pulling.isReady();
      return {
        status: natsHealth.connected && ch.ok && pgHealth.ok && isReady ? "healthy" : "unhealthy",
        nats: natsHealth,
        clickhouse: ch,
        postgres: pgHealth,
        consumer: {
          ready: isReady,
          pending: lastInfo?.num_pending,
          ack_pending: lastInfo?.num_ack_pending,
          redelivered: lastInfo?.num_redelivered,
        },
      };
    },
    stop() {
      stopped ??= (async () => {
        stopping = true;
        logger.info("stopping: finishing the batch in flight");
        clearInterval(statsTimer);
        // The fetch under way ends within FETCH_EXPIRES_MS; its messages join the last batch.
        await withDeadline(pulling.running, FETCH_EXPIRES_MS + 5000).catch(() => {});
        batcher.close();
        await batching;
        // The acks are fire-and-forget publishes: make sure they left before closing.
        await withDeadline(nc.flush(), 5000).catch(() => {});
        await nc.close();
        await clickhouse.close();
        await pg.close();
        logger.info("stopped");
      })();
      return stopped;
    },
  };
}
