import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeEvent, encodeEvent, newEvent } from "../../core/audit/event-codec.js";
import { EVENTS_STREAM, eventSubject } from "../../core/audit/event-subject.js";
import { uuidv7 } from "../../core/ids/uuidv7.js";
import { FAILED_METRIC, PUBLISHED_METRIC } from "../../functions/src/events/management-events.js";
import { type Event, EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { EventStoreService } from "../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { expectCode } from "../harness/management-helpers.js";
import { startTestNats, type TestNats } from "../harness/nats-server.js";

type EventInit = NonNullable<Parameters<typeof newEvent>[0]>;

// StreamEvents (JetStream → the caller, Connect server streaming over HTTP/1.1) and
// management changes published to JetStream after their commit, against a NATS of the
// test's own.
let nats: TestNats;
let stack: FunctionsStack;
let nc: NatsConnection;
let a: Awaited<ReturnType<FunctionsStack["createTenant"]>>;
let b: Awaited<ReturnType<FunctionsStack["createTenant"]>>;

beforeAll(async () => {
  nats = await startTestNats();
  stack = await startFunctionsStack(undefined, { natsUrl: nats.url });
  a = await stack.createTenant();
  b = await stack.createTenant();
  nc = await connect({ servers: nats.url });
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await stack?.stop();
  await nats?.stop();
});

function sdkEvent(tenantId: string, extra: EventInit = {}): Event {
  return newEvent({
    eventId: uuidv7(),
    tenantId,
    executionId: "exec-stream",
    eventType: EventType.TOOL_INVOKED,
    timestamp: timestampFromMs(Date.now()),
    ...extra,
  } as EventInit);
}

async function publish(event: Event): Promise<number> {
  const ack = await jetstream(nc).publish(
    eventSubject(event.tenantId, event.eventType),
    encodeEvent(event),
    {
      msgID: event.eventId,
    },
  );
  return ack.seq;
}

/** Collects what a StreamEvents call yields until `count` arrive or `ms` pass. */
function follow(
  key: string,
  req: Parameters<ReturnType<typeof stack.client<typeof EventStoreService>>["streamEvents"]>[0],
) {
  const controller = new AbortController();
  const got: Event[] = [];
  const done = (async () => {
    try {
      for await (const res of stack.client(EventStoreService, key).streamEvents(req, {
        signal: controller.signal,
      })) {
        if (res.event) got.push(res.event);
      }
    } catch (error) {
      if (!controller.signal.aborted) throw error;
    }
  })();
  return {
    got,
    async until(predicate: () => boolean, ms = 5000) {
      const end = Date.now() + ms;
      while (!predicate() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    },
    async stop() {
      controller.abort();
      await done;
    },
  };
}

describe("StreamEvents", () => {
  it("delivers new events of the caller's tenant, filtered, and none of another tenant's", async () => {
    const stream = follow(a.adminKey, { eventTypes: [EventType.TOOL_INVOKED] });
    // The consumer is created when the call starts; give it a moment before publishing.
    await new Promise((r) => setTimeout(r, 300));
    const other = sdkEvent(b.tenantId);
    const wrongType = sdkEvent(a.tenantId, { eventType: EventType.TOOL_COMPLETED });
    const mine = sdkEvent(a.tenantId, { labels: { k: "v" } });
    await publish(other);
    await publish(wrongType);
    const seq = await publish(mine);
    await stream.until(() => stream.got.length >= 1);
    await new Promise((r) => setTimeout(r, 200));
    await stream.stop();
    expect(stream.got.map((e) => e.eventId)).toEqual([mine.eventId]);
    expect(stream.got[0]?.sequence).toBe(BigInt(seq));
    expect(stream.got[0]?.labels).toEqual({ k: "v" });
    // The caller went away: the server stopped its consumer (none left on the stream).
    const jsm = await jetstreamManager(nc);
    let consumers = -1;
    for (let i = 0; i < 100 && consumers !== 0; i++) {
      consumers = (await jsm.streams.info(EVENTS_STREAM)).state.consumer_count;
      if (consumers !== 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(consumers).toBe(0);
  });

  it("replays from after_sequence, applying labels and execution filters", async () => {
    const first = sdkEvent(a.tenantId, { labels: { run: "replay" } });
    const before = (await publish(first)) - 1;
    const second = sdkEvent(a.tenantId, { labels: { run: "replay" }, executionId: "exec-other" });
    const third = sdkEvent(a.tenantId, { labels: { run: "other" } });
    await publish(second);
    await publish(third);
    const stream = follow(a.adminKey, {
      afterSequence: BigInt(before),
      labels: { run: "replay" },
      executionId: "exec-stream",
    });
    await stream.until(() => stream.got.length >= 1);
    await new Promise((r) => setTimeout(r, 200));
    await stream.stop();
    expect(stream.got.map((e) => e.eventId)).toEqual([first.eventId]);
  });

  it("refuses another tenant's id with PermissionDenied", async () => {
    const error = await (async () => {
      try {
        for await (const _ of stack.client(EventStoreService, b.adminKey).streamEvents({
          tenantId: a.tenantId,
        })) {
          // nothing may arrive
        }
      } catch (e) {
        return e as { code?: number };
      }
      return undefined;
    })();
    expect(error?.code).toBe(7); // PermissionDenied
  });
});

describe("management changes on JetStream", () => {
  it("publishes a committed change as MANAGEMENT_CHANGE with the PostgreSQL row's id", async () => {
    const before = stack.deps.metrics.value(PUBLISHED_METRIC);
    const policies = stack.client(PolicyService, a.adminKey);
    const created = await policies.createPolicy({
      policy: {
        name: `stream-${uuidv7().slice(-8)}`,
        regoSource: 'package fulcrum.policy\n\nwarn contains "x"\n',
      },
    });
    const policyId = created.policy?.policyId ?? "";
    const { rows } = await stack.owner.query<{ id: string; action: string }>(
      "SELECT id::text AS id, action FROM events WHERE tenant_id = $1 AND target_id = $2 ORDER BY occurred_at, action",
      [a.tenantId, policyId],
    );
    expect(rows.length).toBeGreaterThan(0);

    const consumer = await jetstream(nc).consumers.get(EVENTS_STREAM, {
      filter_subjects: eventSubject(a.tenantId, EventType.MANAGEMENT_CHANGE),
      deliver_policy: DeliverPolicy.All,
    });
    const seen = new Map<string, Event>();
    const messages = await consumer.consume();
    const timer = setTimeout(() => void messages.close(), 5000);
    for await (const msg of messages) {
      const decoded = decodeEvent(msg.data);
      if (decoded.ok) seen.set(decoded.event.eventId, decoded.event);
      if (rows.every((r) => seen.has(r.id))) break;
    }
    clearTimeout(timer);
    await messages.close();
    for (const row of rows) {
      const event = seen.get(row.id);
      expect(event, row.action).toBeDefined();
      expect(event?.tenantId).toBe(a.tenantId);
      expect(event?.source).toBe("fulcrum-functions");
      expect(event?.details.case).toBe("management");
      if (event?.details.case === "management") {
        expect(event.details.value.action).toBe(row.action);
        expect(event.details.value.targetId).toBe(policyId);
        expect(event.details.value.actorType).toBe("api_key");
      }
      expect(event?.payload?.actor).toBeDefined();
    }
    expect(stack.deps.metrics.value(PUBLISHED_METRIC)).toBeGreaterThanOrEqual(before + rows.length);
    // The tenants' creation (a platform call) was published too.
    const tenantCreated = [...seen.values()].find(
      (e) => e.details.case === "management" && e.details.value.action === "tenant.created",
    );
    expect(tenantCreated?.details.value).toMatchObject({ actorType: "system" });
  });

  it("answers the change while NATS is down, counting the lost event", async () => {
    const failed = stack.deps.metrics.value(FAILED_METRIC);
    await nats.pause();
    try {
      const started = Date.now();
      const created = await stack.client(PolicyService, a.adminKey).createPolicy({
        policy: {
          name: `down-${uuidv7().slice(-8)}`,
          regoSource: 'package fulcrum.policy\n\nwarn contains "y"\n',
        },
      });
      expect(created.policy?.policyId).toBeTruthy();
      expect(Date.now() - started).toBeLessThan(5000);
      expect(stack.deps.metrics.value(FAILED_METRIC)).toBeGreaterThan(failed);
    } finally {
      await nats.resume();
    }
  });
});

describe("the event store unreachable", () => {
  it("answers the ClickHouse reads with Unavailable and a clear message", async () => {
    // This stack has no ClickHouse (the harness points it at a closed port).
    const client = stack.client(EventStoreService, a.adminKey);
    await expectCode(client.queryEvents({}), Code.Unavailable, /ClickHouse\) is unavailable/);
    await expectCode(client.getEventStoreStats({}), Code.Unavailable, /ClickHouse/);
  });
});
