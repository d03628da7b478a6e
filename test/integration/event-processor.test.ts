/**
 * The event processor in-process against a NATS of each test's own, a fresh ClickHouse
 * database and a fresh PostgreSQL database: every event lands exactly once, governance
 * events reach PostgreSQL under their tenant only, duplicates collapse, malformed
 * messages are dead-lettered without stopping the stream, and /healthz and /metrics say
 * what is going on.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { jetstreamManager } from "@nats-io/jetstream";
import { sql } from "drizzle-orm";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { encodeEvent } from "../../core/audit/event-codec.js";
import {
  DEFAULT_EVENT_STREAM_SETTINGS,
  type EventStreamSettings,
} from "../../core/audit/event-stream.js";
import { DEAD_LETTER_STREAM, EVENTS_STREAM, eventSubject } from "../../core/audit/event-subject.js";
import { events } from "../../db/schema/events.js";
import { withTenant } from "../../db/tenant-context.js";
import { EventSchema, EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { DEAD_LETTER_HEADERS } from "../../workers/event-processor/src/dead-letter.js";
import { M } from "../../workers/event-processor/src/metrics.js";
import {
  type EventProcessor,
  startEventProcessor,
} from "../../workers/event-processor/src/processor.js";
import { serveHealthHttp } from "../../workers/shared/health-http.js";
import { type TestClickHouse, testClickHouse } from "../harness/clickhouse.js";
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
  testEvent,
} from "../harness/event-processor.js";
import { startTestNats, type TestNats } from "../harness/nats-server.js";

let db: EventsDatabase;
beforeAll(async () => {
  db = await openEventsDatabase(inject("pgAddress"));
}, 60_000);
afterAll(async () => {
  await db?.close();
});

/** One test's NATS, ClickHouse database, producer and (in-process) processor. */
interface Setup {
  nats: TestNats;
  ch: TestClickHouse;
  pub: Awaited<ReturnType<typeof producer>>;
  processor: EventProcessor;
}
let current: Setup | undefined;
afterEach(async () => {
  const s = current;
  current = undefined;
  await s?.processor.stop();
  await s?.pub.close();
  await s?.nats.stop();
  await s?.ch.drop();
});

async function setup(streams: EventStreamSettings = DEFAULT_EVENT_STREAM_SETTINGS) {
  const nats = await startTestNats();
  const ch = await testClickHouse();
  const pub = await producer(nats.url, streams);
  const processor = await startEventProcessor(
    processorConfig({ natsUrl: nats.url, clickhouse: ch.config, db, streams }),
    { info: () => {}, error: () => {} },
  );
  current = { nats, ch, pub, processor };
  await processor.ready;
  return current;
}

async function drained(s: Setup, expected: number) {
  await eventually(`${expected} rows FINAL`, async () => {
    const counts = await chCounts(s.ch.client);
    const consumer = await consumerState(s.pub.nc);
    return counts.final === expected && consumer.pending === 0 && consumer.ackPending === 0;
  });
}

const governanceRows = (tenantId: string) =>
  withTenant(db.fresh.connectAs("fulcrum_app").db, tenantId, (tx) =>
    tx.select().from(events).where(sql`${events.details}->>'event_type' IS NOT NULL`),
  );

describe("event processor", () => {
  it("stores N published events exactly once, governance ones in PostgreSQL under RLS", async () => {
    const s = await setup();
    const n = 2000;
    const published = Array.from({ length: n }, (_, i) => testEvent(db.tenantA, i));
    // Governance events PostgreSQL cannot take: a tenant that does not exist, a slug.
    const ghost = testEvent(crypto.randomUUID(), 0, EventType.BUDGET_EXCEEDED);
    const slug = testEvent("acme", 0, EventType.POLICY_VIOLATION);
    await publishEvents(s.pub.js, [...published, ghost, slug]);
    await drained(s, n + 2);

    const counts = await chCounts(s.ch.client);
    expect(counts).toEqual({ final: n + 2, raw: n + 2, unique: n + 2 });
    const violations = published.filter((e) => e.eventType === EventType.POLICY_VIOLATION);
    expect(violations.length).toBe(n / 10);

    const rows = await governanceRows(db.tenantA);
    expect(rows.length).toBe(violations.length);
    expect(new Set(rows.map((r) => r.id))).toEqual(new Set(violations.map((e) => e.eventId)));
    expect(rows[0]).toMatchObject({ action: "policy.violation", targetType: "policy" });
    expect(JSON.stringify(rows)).not.toContain("user text");
    // RLS: the other tenant sees none of them.
    expect((await governanceRows(db.tenantB)).length).toBe(0);

    const metrics = s.processor.metrics;
    expect(metrics.value(M.stored)).toBe(n + 2);
    expect(metrics.value(M.governanceRows)).toBe(violations.length);
    expect(metrics.value(M.governanceSkipped, { reason: "tenant_not_found" })).toBe(1);
    expect(metrics.value(M.governanceSkipped, { reason: "tenant_id is not a UUID" })).toBe(1);
    expect(metrics.value(M.redeliveries)).toBe(0);
  });

  it("stores an event published twice once, inside and after the duplicate window", async () => {
    const streams = { ...DEFAULT_EVENT_STREAM_SETTINGS, duplicateWindowMs: 1000 };
    const s = await setup(streams);
    const event = testEvent(db.tenantA, 1);
    const other = testEvent(db.tenantA, 3);
    // An SDK retry: the same event id within the window is stored once by JetStream.
    await publishEvents(s.pub.js, [event, other]);
    const retry = await s.pub.js.publish(
      eventSubject(event.tenantId, event.eventType),
      encodeEvent(event),
      { msgID: event.eventId },
    );
    expect(retry.duplicate).toBe(true);
    await drained(s, 2);

    // After the window JetStream stores it again; ClickHouse collapses the two rows.
    await sleep(1500);
    const late = await s.pub.js.publish(
      eventSubject(event.tenantId, event.eventType),
      encodeEvent(event),
      { msgID: event.eventId },
    );
    expect(late.duplicate).toBe(false);
    const jsm = await jetstreamManager(s.pub.nc);
    expect((await jsm.streams.info(EVENTS_STREAM)).state.messages).toBe(3);
    await eventually("the late copy inserted", async () => {
      const c = await consumerState(s.pub.nc);
      return c.pending === 0 && c.ackPending === 0 && (await chCounts(s.ch.client)).raw >= 2;
    });
    const counts = await chCounts(s.ch.client);
    expect(counts.final).toBe(2);
    expect(counts.unique).toBe(2);
    // raw is 3 until a merge runs, 2 after; FINAL is 2 either way.
    expect([2, 3]).toContain(counts.raw);
  });

  it("dead-letters malformed messages and keeps storing the valid ones around them", async () => {
    const s = await setup();
    const before = Array.from({ length: 50 }, (_, i) => testEvent(db.tenantA, i));
    const after = Array.from({ length: 50 }, (_, i) => testEvent(db.tenantA, i + 50));
    await publishEvents(s.pub.js, before);
    const subject = eventSubject(db.tenantA, EventType.CUSTOM);
    // Garbage bytes, an oversized event, and a schema newer than this reader.
    await s.pub.js.publish(subject, new Uint8Array([0xff, 0xff, 0xff, 0x0f, 0x01]));
    const big = testEvent(db.tenantA, 1);
    big.labels = { blob: "x".repeat(70 * 1024) };
    await s.pub.js.publish(subject, encodeEvent(big));
    const future = create(EventSchema, { ...testEvent(db.tenantA, 2), schemaVersion: 2 });
    await s.pub.js.publish(subject, toBinary(EventSchema, future));
    await publishEvents(s.pub.js, after);
    await drained(s, 100);

    expect(await chCounts(s.ch.client)).toEqual({ final: 100, raw: 100, unique: 100 });
    const jsm = await jetstreamManager(s.pub.nc);
    expect((await jsm.streams.info(DEAD_LETTER_STREAM)).state.messages).toBe(3);
    const reasons: Record<string, string | undefined> = {};
    for (let seq = 1; seq <= 3; seq++) {
      const msg = await jsm.streams.getMessage(DEAD_LETTER_STREAM, { seq });
      expect(msg?.subject).toBe(`fulcrum.deadletter.${db.tenantA}.custom`);
      expect(msg?.header.get(DEAD_LETTER_HEADERS.subject)).toBe(subject);
      expect(Number(msg?.header.get(DEAD_LETTER_HEADERS.deliveries))).toBe(1);
      expect(Number(msg?.header.get(DEAD_LETTER_HEADERS.sequence))).toBeGreaterThan(50);
      reasons[msg?.header.get(DEAD_LETTER_HEADERS.category) ?? "?"] = msg?.header.get(
        DEAD_LETTER_HEADERS.reason,
      );
    }
    expect(reasons.undecodable).toMatch(/not a protobuf Event/);
    expect(reasons.oversized).toMatch(/limit 65536/);
    expect(reasons.invalid).toMatch(/schema_version 2/);
    const metrics = s.processor.metrics;
    for (const reason of ["undecodable", "oversized", "invalid"]) {
      expect(metrics.value(M.deadLetters, { reason })).toBe(1);
    }
  });

  it("serves /healthz and /metrics", async () => {
    const s = await setup();
    const http = await serveHealthHttp(s.processor, "127.0.0.1", 0);
    try {
      await publishEvents(
        s.pub.js,
        Array.from({ length: 30 }, (_, i) => testEvent(db.tenantA, i)),
      );
      await drained(s, 30);
      await sleep(400); // one stats refresh (statsIntervalMs 250)
      const health = await fetch(`${http.url}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({
        status: "healthy",
        nats: { connected: true, server: expect.stringContaining("127.0.0.1") },
        clickhouse: { ok: true },
        postgres: { ok: true },
        consumer: { ready: true, pending: 0, ack_pending: 0, redelivered: 0 },
      });
      const metrics = await fetch(`${http.url}/metrics`);
      expect(metrics.headers.get("content-type")).toMatch(/^text\/plain; version=0.0.4/);
      const text = await metrics.text();
      for (const line of [
        "fulcrum_nats_pending_messages 0",
        "fulcrum_event_processor_ack_pending 0",
        "fulcrum_event_processor_events_stored_total 30",
        "# TYPE fulcrum_event_processor_batch_size histogram",
        "# TYPE fulcrum_event_processor_clickhouse_insert_seconds histogram",
        "# TYPE fulcrum_event_processor_redeliveries_total counter",
        "# TYPE fulcrum_event_processor_dead_letters_total counter",
        "fulcrum_event_processor_governance_rows_total 3",
      ]) {
        expect(text).toContain(line);
      }
      expect(text).toMatch(/fulcrum_event_processor_batch_size_count [1-9]/);

      // ClickHouse gone: unhealthy, and it says which part.
      const broken = await startEventProcessor(
        processorConfig({
          natsUrl: s.nats.url,
          clickhouse: { url: "http://127.0.0.1:9", database: "none" },
          db,
          streams: DEFAULT_EVENT_STREAM_SETTINGS,
        }),
        { info: () => {}, error: () => {} },
      );
      try {
        await broken.ready;
        const h = await broken.health();
        expect(h).toMatchObject({ status: "unhealthy", clickhouse: { ok: false } });
      } finally {
        await broken.stop();
      }
    } finally {
      await http.close();
    }
  });
});
