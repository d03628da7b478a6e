import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { uuidv7 } from "../../core/ids/uuidv7.js";
import { EventSchema, EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { EventStoreService } from "../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import {
  bufferStats,
  deleteEventsStream,
  eventually,
  pauseNats,
  resumeNats,
  storedEvents,
} from "./audit-stream.js";
import { postJson, workerClient } from "./client.js";
import { seed } from "./seed.js";

/**
 * The audit pipeline's edge side against the tier's own NATS: decision events through
 * the AuditBuffer Durable Object, PublishEvent / PublishEventBatch for SDKs, and the
 * faults (stream deleted, NATS down). One file, run in order: the faults would disturb
 * publishes of a file running beside it.
 */
const PUBLISH = "fulcrum.eventstore.v1.EventStoreService/PublishEvent";

const { tenantId } = seed();
const tenantSubject = `fulcrum.events.${tenantId}.>`;

describe("decision events reach JetStream through the audit buffer", () => {
  it("one CheckPolicy produces exactly one event, with the right subject, type and tenant", async () => {
    const response = await workerClient(PolicyService).checkPolicy({});
    const mine = async () =>
      (await storedEvents(tenantSubject)).filter(
        (m) => m.event.policyResult?.decisionId === response.decisionId,
      );
    const [first] = await eventually(async () => {
      const found = await mine();
      return found.length > 0 ? found : undefined;
    }, "the decision's event");
    expect(first).toMatchObject({
      subject: `fulcrum.events.${tenantId}.policy_evaluated`,
      schema: "fulcrum.eventstore.v1.Event",
      event: { tenantId, eventType: "EVENT_TYPE_POLICY_EVALUATED", source: "fulcrum-edge" },
    });
    expect(first?.msgId).toBe(first?.event.eventId);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await mine()).toHaveLength(1);
  });
});

const events = (apiKey?: string) => workerClient(EventStoreService, apiKey ? { apiKey } : {});
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
let executions = 0;
/** A valid event of a fresh execution (no id, no timestamp: what the SDK sends). */
const toolEvent = (extra: MessageInitShape<typeof EventSchema> = {}) =>
  create(EventSchema, {
    executionId: `exec-${Date.now()}-${executions++}`,
    eventType: EventType.TOOL_INVOKED,
    labels: { tool: "search" },
    ...extra,
  });

async function failure(call: Promise<unknown>): Promise<ConnectError> {
  const outcome = await call.then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  expect(outcome, "expected the call to fail").toBeInstanceOf(ConnectError);
  return outcome as ConnectError;
}

describe("EventStoreService.PublishEvent at the edge", () => {
  it("stores the event in JetStream and answers its id, sequence and time", async () => {
    const event = toolEvent();
    const response = await events().publishEvent({ event });
    expect(response.eventId).toMatch(UUID_V7);
    expect(response.streamSequence).toBeGreaterThan(0n);
    expect(response.duplicate).toBe(false);
    expect(response.storedAt).toBeDefined();
    const stored = (await storedEvents(`fulcrum.events.${tenantId}.tool_invoked`)).filter(
      (m) => m.event.eventId === response.eventId,
    );
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({
      seq: Number(response.streamSequence),
      msgId: response.eventId,
      event: { tenantId, executionId: event.executionId, labels: { tool: "search" } },
    });
    expect(stored[0]?.event.timestamp).toBeDefined();
  });

  it("an SDK retry without event_id gets the first event_id back, marked duplicate", async () => {
    const event = toolEvent();
    const first = await events().publishEvent({ event });
    const retry = await events().publishEvent({ event });
    expect(retry.eventId).toBe(first.eventId);
    expect(retry.streamSequence).toBe(first.streamSequence);
    expect([first.duplicate, retry.duplicate]).toEqual([false, true]);
    // A different event (another execution) is not a duplicate.
    const other = await events().publishEvent({ event: toolEvent() });
    expect(other.eventId).not.toBe(first.eventId);
    expect(other.duplicate).toBe(false);
  });

  it("an event_id given by the client is used (lower-cased); publishing it twice is a duplicate", async () => {
    const id = uuidv7();
    const event = toolEvent({ eventId: id.toUpperCase() });
    const first = await events().publishEvent({ event });
    const again = await events().publishEvent({ event: toolEvent({ eventId: id }) });
    expect(first.eventId).toBe(id);
    expect([first.duplicate, again.duplicate]).toEqual([false, true]);
    expect(again.streamSequence).toBe(first.streamSequence);
  });

  it("a batch is stored with one result per event, in order", async () => {
    const batch = [
      toolEvent(),
      toolEvent(),
      toolEvent({ eventType: EventType.LLM_CALL_COMPLETED }),
    ];
    const response = await events().publishEventBatch({ events: batch });
    expect(response.results.map((r) => r.index)).toEqual([0, 1, 2]);
    expect(response).toMatchObject({ publishedCount: 3, duplicateCount: 0, failedCount: 0 });
    const sequences = response.results.map((r) => r.streamSequence);
    expect(new Set(sequences).size).toBe(3);
    expect(sequences.every((s) => s > 0n)).toBe(true);
    const retry = await events().publishEventBatch({ events: batch });
    expect(retry.results.map((r) => r.eventId)).toEqual(response.results.map((r) => r.eventId));
    expect(retry.duplicateCount).toBe(3);
  });

  it("an event over 64 KiB encoded is InvalidArgument naming the limit", async () => {
    const big = toolEvent({
      labels: Object.fromEntries(range(70).map((i) => [`k${i}`, "x".repeat(1000)])),
    });
    const error = await failure(events().publishEvent({ event: big }));
    expect(error.code).toBe(Code.InvalidArgument);
    // 70 labels is over the proto's 32: protovalidate answers first, naming the field.
    expect(error.rawMessage).toContain("labels");
    const payload = toolEvent({
      payload: { fields: { blob: { kind: { case: "stringValue", value: "x".repeat(70_000) } } } },
    });
    const tooBig = await failure(events().publishEvent({ event: payload }));
    expect(tooBig.code).toBe(Code.InvalidArgument);
    expect(tooBig.rawMessage).toMatch(
      /event: the event is \d+ bytes encoded, over the 65536-byte \(64 KiB\) limit/,
    );
  });

  it("a timestamp older than 90 days or over an hour ahead is InvalidArgument", async () => {
    const day = 24 * 3600_000;
    const old = await failure(
      events().publishEvent({
        event: toolEvent({ timestamp: timestampFromMs(Date.now() - 91 * day) }),
      }),
    );
    expect(old.code).toBe(Code.InvalidArgument);
    expect(old.rawMessage).toContain("event.timestamp: is more than 90 days in the past");
    const ahead = await failure(
      events().publishEvent({
        event: toolEvent({ timestamp: timestampFromMs(Date.now() + 2 * 3600_000) }),
      }),
    );
    expect(ahead.code).toBe(Code.InvalidArgument);
    expect(ahead.rawMessage).toContain("event.timestamp: is more than 1 hour in the future");
    const batch = await failure(
      events().publishEventBatch({
        events: [toolEvent(), toolEvent({ timestamp: timestampFromMs(Date.now() - 91 * day) })],
      }),
    );
    expect(batch.rawMessage).toContain("events[1].timestamp");
  });

  it("another tenant's id is PermissionDenied; the key's own or none is accepted", async () => {
    const error = await failure(
      events().publishEvent({ event: toolEvent({ tenantId: seed().otherTenantId }) }),
    );
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.rawMessage).toContain("event.tenant_id names another tenant");
    const own = await events().publishEvent({ event: toolEvent({ tenantId }) });
    expect(own.streamSequence).toBeGreaterThan(0n);
  });

  it("a manage-only key is PermissionDenied, naming the check scope", async () => {
    const error = await failure(events(seed().manageKey).publishEvent({ event: toolEvent() }));
    expect(error.code).toBe(Code.PermissionDenied);
    expect(error.rawMessage).toContain("check scope");
  });

  it("an unknown or unspecified event type is InvalidArgument naming the field", async () => {
    const unknown = await postJson(
      PUBLISH,
      JSON.stringify({ event: { executionId: "exec-x", eventType: "EVENT_TYPE_NOPE" } }),
    );
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { message: string }).message).toContain("EVENT_TYPE_NOPE");
    const unspecified = await failure(
      events().publishEvent({ event: toolEvent({ eventType: EventType.UNSPECIFIED }) }),
    );
    expect(unspecified.code).toBe(Code.InvalidArgument);
    expect(unspecified.rawMessage).toContain("event.event_type");
    const undefinedValue = await failure(
      events().publishEvent({ event: toolEvent({ eventType: 999 as EventType }) }),
    );
    expect(undefinedValue.rawMessage).toContain("event.event_type");
  });

  it("the query methods point at the management API", async () => {
    const error = await failure(events().queryEvents({}));
    expect(error.code).toBe(Code.Unimplemented);
    expect(error.rawMessage).toContain("management API");
  });
});

describe("faults", () => {
  it("a deleted events stream is recreated by the next publish", async () => {
    await events().publishEvent({ event: toolEvent() });
    await deleteEventsStream();
    const response = await events().publishEvent({ event: toolEvent() });
    expect(response.streamSequence).toBe(1n);
    const decision = await workerClient(PolicyService).checkPolicy({});
    await eventually(async () => {
      const found = (await storedEvents(tenantSubject)).filter(
        (m) => m.event.policyResult?.decisionId === decision.decisionId,
      );
      return found.length === 1 ? found : undefined;
    }, "the decision's event in the recreated stream");
  });

  it("with NATS down, events stay buffered and are delivered when it returns", async () => {
    await pauseNats();
    let decisionId = "";
    let published: { eventId: string; streamSequence: bigint } | undefined;
    try {
      decisionId = (await workerClient(PolicyService).checkPolicy({})).decisionId;
      published = await events().publishEvent({ event: toolEvent() });
      // Durable in the buffer, not yet in JetStream.
      expect(published.streamSequence).toBe(0n);
      await eventually(async () => {
        const stats = await bufferStats();
        return stats.reduce((n, s) => n + s.buffered, 0) >= 2 ? stats : undefined;
      }, "two events buffered");
    } finally {
      await resumeNats();
    }
    const delivered = await eventually(
      async () => {
        const all = await storedEvents(tenantSubject);
        const decision = all.filter((m) => m.event.policyResult?.decisionId === decisionId);
        const sdk = all.filter((m) => m.event.eventId === published?.eventId);
        return decision.length === 1 && sdk.length === 1 ? all : undefined;
      },
      "the buffered events in JetStream",
      20_000,
    );
    expect(delivered.length).toBeGreaterThan(0);
    const stats = await eventually(async () => {
      const s = await bufferStats();
      return s.every((x) => x.buffered === 0) ? s : undefined;
    }, "the buffers drained");
    expect(stats.some((s) => s.connected)).toBe(true);
  }, 30_000);
});

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}
