import type { UnaryRequest, UnaryResponse } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { uuidv7 } from "../../../core/ids/uuidv7.js";
import type { Logger } from "../../../core/logging/logger.js";
import { Metrics } from "../../../core/observability/metrics.js";
import { type Event, EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { EventPublisher } from "./event-publisher.js";
import {
  FAILED_METRIC,
  managementEvent,
  managementEventsInterceptor,
  PUBLISHED_METRIC,
  stageManagementEvent,
  withStagedEvents,
} from "./management-events.js";

const TENANT = "0193a5a0-0000-7000-8000-000000000001";

function change(action: string): Event {
  return managementEvent({
    id: uuidv7(),
    tenantId: TENANT,
    actorType: "api_key",
    actorId: "key-1",
    action,
    targetType: "policy",
    targetId: "p-1",
    details: { name: "n", actor: { role: "admin" } },
    occurredAt: new Date("2026-11-24T10:00:00Z"),
  });
}

function setup(fail = false) {
  const published: Event[] = [];
  const logged: Record<string, unknown>[] = [];
  const publisher: EventPublisher = {
    async publish(event) {
      if (fail) throw new Error("nats down");
      published.push(event);
      return { sequence: published.length, duplicate: false };
    },
  };
  const logger: Logger = { info: () => undefined, error: (_m, f) => logged.push(f ?? {}) };
  const metrics = new Metrics();
  const interceptor = managementEventsInterceptor(publisher, metrics, logger);
  /** Runs `handler` as a unary call through the interceptor. */
  const call = (handler: () => Promise<void>) =>
    interceptor(async () => {
      await handler();
      return {} as UnaryResponse;
    })({ stream: false } as UnaryRequest);
  return { published, logged, metrics, call };
}

describe("management events", () => {
  it("carries the audit row: id, type, details, payload, source", () => {
    const event = change("policy.created");
    expect(event.eventType).toBe(EventType.MANAGEMENT_CHANGE);
    expect(event.source).toBe("fulcrum-functions");
    expect(event.details).toMatchObject({
      case: "management",
      value: { actorType: "api_key", actorId: "key-1", action: "policy.created", targetId: "p-1" },
    });
    expect(event.payload).toEqual({ name: "n", actor: { role: "admin" } });
    expect(event.schemaVersion).toBe(1);
  });

  it("publishes what committed transactions staged, after the handler, in order", async () => {
    const { published, metrics, call } = setup();
    const first = change("policy.created");
    const second = change("policy.version_activated");
    await call(async () => {
      await withStagedEvents(async () => stageManagementEvent(first));
      await withStagedEvents(async () => stageManagementEvent(second));
      expect(published).toEqual([]); // not before the handler is done
    });
    expect(published.map((e) => e.eventId)).toEqual([first.eventId, second.eventId]);
    expect(metrics.value(PUBLISHED_METRIC)).toBe(2);
  });

  it("drops what a rolled-back transaction staged, keeps a committed one's when the call fails later", async () => {
    const { published, call } = setup();
    const committed = change("api_key.created");
    const rolledBack = change("api_key.revoked");
    await expect(
      call(async () => {
        await withStagedEvents(async () => stageManagementEvent(committed));
        await withStagedEvents(async () => {
          stageManagementEvent(rolledBack);
          throw new Error("rollback");
        }).catch(() => undefined);
        throw new Error("Redis unavailable after the commit");
      }),
    ).rejects.toThrow(/Redis/);
    expect(published.map((e) => e.eventId)).toEqual([committed.eventId]);
  });

  it("never fails the call when publishing fails: logs ids, counts it", async () => {
    const { logged, metrics, call } = setup(true);
    const event = change("user.created");
    await call(async () => {
      await withStagedEvents(async () => stageManagementEvent(event));
    });
    expect(metrics.value(FAILED_METRIC)).toBe(1);
    expect(logged[0]).toMatchObject({ eventId: event.eventId, action: "user.created" });
    expect(JSON.stringify(logged)).not.toContain("admin"); // details stay out of the log
  });
});
