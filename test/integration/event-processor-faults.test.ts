/**
 * The event processor under faults, with counts: killed with SIGKILL mid-batch and
 * restarted, stopped with SIGTERM mid-stream, ClickHouse unreachable for 10 s, NATS
 * restarted. Every case ends with every published event in ClickHouse exactly once.
 */

import { rm } from "node:fs/promises";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { DEFAULT_EVENT_STREAM_SETTINGS } from "../../core/audit/event-stream.js";
import { EVENTS_STREAM } from "../../core/audit/event-subject.js";
import { createClickHouse } from "../../db/clickhouse/client.js";
import { migrateClickHouse } from "../../db/clickhouse/migrate.js";
import { freePort } from "../../scripts/lib/ports.js";
import { ensureClickHouse } from "../../scripts/services/clickhouse.js";
import { repoRoot } from "../../scripts/services/service.js";
import { startEventProcessor } from "../../workers/event-processor/src/processor.js";
import { testClickHouse } from "../harness/clickhouse.js";
import {
  chCounts,
  consumerState,
  type EventsDatabase,
  eventually,
  openEventsDatabase,
  processorConfig,
  producer,
  publishEvents,
  sleep,
  spawnProcessor,
  testEvent,
  waitHealthy,
} from "../harness/event-processor.js";
import { startTestNats } from "../harness/nats-server.js";

const streams = DEFAULT_EVENT_STREAM_SETTINGS;
const quiet = { info: () => {}, error: () => {} };

let db: EventsDatabase;
beforeAll(async () => {
  db = await openEventsDatabase(inject("pgAddress"));
}, 60_000);
afterAll(async () => {
  await db?.close();
});

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function base() {
  const nats = await startTestNats();
  cleanups.push(() => nats.stop());
  const ch = await testClickHouse();
  cleanups.push(() => ch.drop());
  const pub = await producer(nats.url, streams);
  cleanups.push(() => pub.close());
  return { nats, ch, pub };
}

describe("event processor under faults", () => {
  it("SIGKILL mid-batch, then restart: every event exactly once", async () => {
    const { nats, ch, pub } = await base();
    const n = 20_000;
    await publishEvents(
      pub.js,
      Array.from({ length: n }, (_, i) => testEvent(db.tenantA, i)),
    );
    // Small batches, a short ack wait so unacked ones come back quickly, and the first
    // process holding its acks for 3 s after each insert: the kill lands with rows in
    // ClickHouse whose messages were never acked, which the second process stores again.
    const config = processorConfig({
      natsUrl: nats.url,
      clickhouse: ch.config,
      db,
      streams,
      overrides: { batchMaxEvents: 1000, ackWaitMs: 3000 },
    });
    // Merges off until the end, so the physical duplicates stay countable.
    await ch.client.command({ query: "SYSTEM STOP MERGES events" });
    const first = await spawnProcessor({ ...config, faultAckDelayMs: 3000 });
    cleanups.push(async () => first.child.kill("SIGKILL"));
    await eventually(
      `some rows before the kill\n${first.output().slice(-2000)}`,
      async () => (await chCounts(ch.client)).raw > 0,
      60_000,
      10,
    );
    first.child.kill("SIGKILL");
    expect(await first.exited).toBe("SIGKILL");
    const atKill = await chCounts(ch.client);
    expect(atKill.final).toBeGreaterThan(0);
    expect(atKill.final).toBeLessThan(n);

    const second = await spawnProcessor(config);
    cleanups.push(async () => second.child.kill("SIGKILL"));
    await eventually(
      "all rows after the restart",
      async () => {
        const c = await consumerState(pub.nc);
        return (await chCounts(ch.client)).final === n && c.pending === 0 && c.ackPending === 0;
      },
      60_000,
    );
    const counts = await chCounts(ch.client);
    console.log(
      `SIGKILL: ${atKill.final} rows at the kill; after restart final=${counts.final} ` +
        `unique=${counts.unique} raw=${counts.raw} (raw > n: redelivered rows awaiting merge)`,
    );
    expect(counts.final).toBe(n);
    expect(counts.unique).toBe(n);
    // The rows stored but never acked before the kill were delivered and inserted again:
    // more physical rows than events, collapsed by ReplacingMergeTree + FINAL.
    expect(counts.raw).toBeGreaterThan(n);
    // And a merge removes them for good.
    await ch.client.command({ query: "SYSTEM START MERGES events" });
    await ch.client.command({ query: "OPTIMIZE TABLE events FINAL" });
    expect((await chCounts(ch.client)).raw).toBe(n);
    second.child.kill("SIGTERM");
    expect(await second.exited, second.output().slice(-2000)).toBe(0);
  }, 120_000);

  it("SIGTERM mid-stream: exits 0 with nothing left unacked, and nothing is lost", async () => {
    const { nats, ch, pub } = await base();
    const n = 20_000;
    await publishEvents(
      pub.js,
      Array.from({ length: n }, (_, i) => testEvent(db.tenantA, i)),
    );
    const config = processorConfig({
      natsUrl: nats.url,
      clickhouse: ch.config,
      db,
      streams,
      overrides: { batchMaxEvents: 1000 },
    });
    const first = await spawnProcessor(config);
    cleanups.push(async () => first.child.kill("SIGKILL"));
    await eventually(
      `some rows before SIGTERM\n${first.output().slice(-2000)}`,
      async () => (await chCounts(ch.client)).raw > 0,
      60_000,
      10,
    );
    first.child.kill("SIGTERM");
    expect(await first.exited).toBe(0);
    const atStop = await chCounts(ch.client);
    const state = await consumerState(pub.nc);
    console.log(`SIGTERM: ${atStop.final} rows stored at exit; consumer ${JSON.stringify(state)}`);
    expect(atStop.final).toBeLessThan(n);
    // Everything it had received was stored and acked (or handed back): nothing waits
    // for the ack timeout, and what is stored is exactly what was acked.
    expect(state.ackPending).toBe(0);
    expect(atStop.raw).toBe(atStop.final);
    expect(first.output()).toContain('"message":"stopped"');

    const second = await spawnProcessor(config);
    cleanups.push(async () => second.child.kill("SIGKILL"));
    await waitHealthy(second);
    await eventually(
      "all rows after the restart",
      async () => (await chCounts(ch.client)).final === n,
      60_000,
    ).catch(async (error: unknown) => {
      console.log(second.output().slice(-4000), await consumerState(pub.nc));
      throw error;
    });
    // Graceful: no message was stored twice.
    expect(await chCounts(ch.client)).toEqual({ final: n, raw: n, unique: n });
    second.child.kill("SIGTERM");
    expect(await second.exited, second.output().slice(-2000)).toBe(0);
  }, 120_000);

  it("ClickHouse unreachable for 10 s: nothing lost, lag back to 0", async () => {
    const nats = await startTestNats();
    cleanups.push(() => nats.stop());
    const dir = join(repoRoot, ".tmp", "services", `clickhouse-ep-${Date.now()}`);
    const server = await ensureClickHouse({ port: await freePort(), dir, removeDirOnStop: true });
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    cleanups.push(() => server.stop());
    expect(server.startedByUs).toBe(true);
    const config = { url: server.url, database: "fulcrum_ep_fault" };
    await migrateClickHouse(config);
    const client = createClickHouse(config);
    cleanups.push(() => client.close());
    const pub = await producer(nats.url, streams);
    cleanups.push(() => pub.close());
    const processor = await startEventProcessor(
      processorConfig({ natsUrl: nats.url, clickhouse: config, db, streams }),
      quiet,
    );
    cleanups.push(() => processor.stop());
    await processor.ready;

    let published = 0;
    const publishSome = async (count: number) => {
      const batch = Array.from({ length: count }, (_, i) => testEvent(db.tenantA, published + i));
      await publishEvents(pub.js, batch);
      published += count;
    };
    await publishSome(500);
    await eventually("first rows", async () => (await chCounts(client)).final === 500);

    await server.pause();
    const outageStart = Date.now();
    while (Date.now() - outageStart < 10_000) {
      await publishSome(200);
      await sleep(500);
    }
    const during = await processor.health();
    expect(during).toMatchObject({ status: "unhealthy", clickhouse: { ok: false } });
    const lagDuring = await consumerState(pub.nc);
    expect(lagDuring.pending + lagDuring.ackPending).toBeGreaterThan(0);
    await server.resume();

    const recoverStart = Date.now();
    await eventually(
      "every event after ClickHouse came back, lag 0",
      async () => {
        const c = await consumerState(pub.nc);
        return (
          (await chCounts(client)).final === published && c.pending === 0 && c.ackPending === 0
        );
      },
      60_000,
      200,
    );
    const counts = await chCounts(client);
    console.log(
      `ClickHouse outage: ${published} published, final=${counts.final} raw=${counts.raw}, ` +
        `recovered ${Date.now() - recoverStart} ms after resume; ` +
        `${processor.metrics.value("fulcrum_event_processor_redeliveries_total")} redeliveries`,
    );
    expect(counts.final).toBe(published);
    expect(counts.unique).toBe(published);
    expect(processor.metrics.value("fulcrum_event_processor_redeliveries_total")).toBeGreaterThan(
      0,
    );
    expect(processor.metrics.value("fulcrum_event_processor_dead_letters_total")).toBe(0);
    await client.command({ query: `DROP DATABASE IF EXISTS ${config.database}` });
  }, 120_000);

  it("NATS restarted: the processor reconnects and nothing is lost", async () => {
    const { nats, ch, pub } = await base();
    const processor = await startEventProcessor(
      processorConfig({ natsUrl: nats.url, clickhouse: ch.config, db, streams }),
      quiet,
    );
    cleanups.push(() => processor.stop());
    await processor.ready;
    await publishEvents(
      pub.js,
      Array.from({ length: 1000 }, (_, i) => testEvent(db.tenantA, i)),
    );
    await eventually("first rows", async () => (await chCounts(ch.client)).final === 1000);

    await nats.pause();
    await eventually("processor sees NATS down", async () => {
      return !(await processor.health()).nats.connected;
    });
    await sleep(1000);
    await nats.resume();
    await eventually(
      "processor reconnected",
      async () => (await processor.health()).nats.connected,
    );
    // The producer reconnects too (on its own schedule: wait for its JetStream to answer,
    // as a producer's retry would); events published after the restart land as well.
    await eventually("producer's JetStream answers again", async () => {
      try {
        await (await jetstreamManager(pub.nc)).streams.info(EVENTS_STREAM);
        return true;
      } catch {
        return false;
      }
    });
    await publishEvents(
      pub.js,
      Array.from({ length: 1000 }, (_, i) => testEvent(db.tenantA, 1000 + i)),
    );
    await eventually(
      "every event after the restart",
      async () => {
        const c = await consumerState(pub.nc);
        return (await chCounts(ch.client)).final === 2000 && c.pending === 0 && c.ackPending === 0;
      },
      60_000,
    );
    expect(await chCounts(ch.client)).toMatchObject({ final: 2000, unique: 2000 });
  }, 120_000);
});
