/**
 * Drain rate of the event processor with its default batch settings: 100,000 events
 * published first, then the processor started; events/s until the last row is visible
 * FINAL. A measurement, not a gate: runs only with EVENT_PROCESSOR_THROUGHPUT=1
 * (`npm run bench:audit` is the benchmark proper).
 */
import { describe, expect, inject, it } from "vitest";
import { DEFAULT_EVENT_STREAM_SETTINGS } from "../../core/audit/event-stream.js";
import { startEventProcessor } from "../../workers/event-processor/src/processor.js";
import { testClickHouse } from "../harness/clickhouse.js";
import {
  chCounts,
  eventually,
  openEventsDatabase,
  processorConfig,
  producer,
  publishEvents,
  testEvent,
} from "../harness/event-processor.js";
import { startTestNats } from "../harness/nats-server.js";

const N = Number(process.env.EVENT_PROCESSOR_THROUGHPUT_EVENTS ?? 100_000);

describe.skipIf(process.env.EVENT_PROCESSOR_THROUGHPUT !== "1")(
  "event processor throughput",
  () => {
    it(`drains ${N} pre-published events`, async () => {
      const streams = DEFAULT_EVENT_STREAM_SETTINGS;
      const db = await openEventsDatabase(inject("pgAddress"));
      const nats = await startTestNats();
      const ch = await testClickHouse();
      const pub = await producer(nats.url, streams);
      try {
        const publishStart = performance.now();
        await publishEvents(
          pub.js,
          Array.from({ length: N }, (_, i) => testEvent(db.tenantA, i)),
          1000,
        );
        const publishMs = performance.now() - publishStart;
        const started = performance.now();
        const processor = await startEventProcessor(
          processorConfig({ natsUrl: nats.url, clickhouse: ch.config, db, streams }),
          { info: () => {}, error: () => {} },
        );
        try {
          await eventually(
            "all rows",
            async () => (await chCounts(ch.client)).final === N,
            110_000,
            50,
          );
        } finally {
          await processor.stop();
        }
        const drainMs = performance.now() - started;
        const batches = processor.metrics.histogram("fulcrum_event_processor_batch_size");
        const insert = processor.metrics.histogram(
          "fulcrum_event_processor_clickhouse_insert_seconds",
        );
        console.log(
          `published ${N} in ${publishMs.toFixed(0)} ms (${((N / publishMs) * 1000).toFixed(0)}/s); ` +
            `drained in ${drainMs.toFixed(0)} ms = ${((N / drainMs) * 1000).toFixed(0)} events/s; ` +
            `${batches.count} batches, mean ${(batches.sum / batches.count).toFixed(0)} events; ` +
            `mean insert ${((insert.sum / insert.count) * 1000).toFixed(0)} ms`,
        );
        expect((await chCounts(ch.client)).unique).toBe(N);
      } finally {
        await pub.close();
        await nats.stop();
        await ch.drop();
        await db.close();
      }
    }, 180_000);
  },
);
