/**
 * Management changes on JetStream, after their commit.
 *
 * `recordAudit` writes the PostgreSQL `events` row inside the change's transaction and
 * stages the same change as an Event (MANAGEMENT_CHANGE, event_id = the row's UUIDv7)
 * on that transaction (`stageManagementEvent`). `inTenant` moves the staged events to the
 * call's outbox only once the transaction has committed (a rollback drops them), and the
 * outbox interceptor publishes them when the handler is done — whether it answered or
 * failed after the commit (e.g. Redis unavailable after a committed change: the change
 * and its row exist, so its event must too).
 *
 * The outbox travels in AsyncLocalStorage, one per call, so the dozen `recordAudit`
 * call sites need no new parameter. A publish that fails is logged and counted
 * (`fulcrum_functions_management_events_failed_total`), never returned to the caller:
 * the change is committed and its PostgreSQL row is the record; what is missing then is
 * the change's copy in ClickHouse (and in StreamEvents).
 */
import { AsyncLocalStorage } from "node:async_hooks";
import type { JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Interceptor } from "@connectrpc/connect";
import { newEvent } from "../../../core/audit/event-codec.js";
import type { Logger } from "../../../core/logging/logger.js";
import type { Metrics } from "../../../core/observability/metrics.js";
import { type Event, EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { EventPublisher } from "./event-publisher.js";

export const MANAGEMENT_EVENT_SOURCE = "fulcrum-functions";
export const PUBLISHED_METRIC = "fulcrum_functions_management_events_published_total";
export const FAILED_METRIC = "fulcrum_functions_management_events_failed_total";

/** One audit row as the event carries it. */
export interface ManagementChangeRecord {
  id: string;
  tenantId: string;
  actorType: string;
  actorId: string;
  action: string;
  targetType: string;
  targetId: string;
  details: Record<string, unknown>;
  occurredAt: Date;
}

export function managementEvent(row: ManagementChangeRecord): Event {
  return newEvent({
    eventId: row.id,
    tenantId: row.tenantId,
    eventType: EventType.MANAGEMENT_CHANGE,
    timestamp: timestampFromDate(row.occurredAt),
    // JSON round trip: jsonb details are plain JSON, and a Struct takes nothing else.
    payload: JSON.parse(JSON.stringify(row.details)) as JsonObject,
    source: MANAGEMENT_EVENT_SOURCE,
    details: {
      case: "management",
      value: {
        actorType: row.actorType,
        actorId: row.actorId,
        action: row.action,
        targetType: row.targetType,
        targetId: row.targetId,
      },
    },
  });
}

/** Events staged by the transaction currently running (inTenant sets it). */
const staged = new AsyncLocalStorage<Event[]>();
/** Events of committed transactions of the current call (the interceptor sets it). */
const outbox = new AsyncLocalStorage<Event[]>();

/** Called by recordAudit inside a transaction. Outside any inTenant it is a no-op. */
export function stageManagementEvent(event: Event): void {
  staged.getStore()?.push(event);
}

/**
 * Runs a transaction (`run`) so that what it stages reaches the call's outbox only if
 * it commits, i.e. only if `run` resolves.
 */
export async function withStagedEvents<T>(run: () => Promise<T>): Promise<T> {
  const events: Event[] = [];
  const result = await staged.run(events, run);
  outbox.getStore()?.push(...events);
  return result;
}

/**
 * Gives each unary call an outbox and publishes it when the handler is done. Placed
 * after the auth interceptor; streaming calls change nothing and pass through.
 */
export function managementEventsInterceptor(
  publisher: EventPublisher,
  metrics: Metrics,
  logger: Logger,
): Interceptor {
  return (next) => async (req) => {
    if (req.stream) return next(req);
    const events: Event[] = [];
    try {
      return await outbox.run(events, () => next(req));
    } finally {
      if (events.length > 0) await publishAll(publisher, metrics, logger, events);
    }
  };
}

export async function publishAll(
  publisher: EventPublisher,
  metrics: Metrics,
  logger: Logger,
  events: readonly Event[],
): Promise<void> {
  for (const event of events) {
    try {
      await publisher.publish(event);
      metrics.increment(PUBLISHED_METRIC);
    } catch (error) {
      metrics.increment(FAILED_METRIC);
      // Ids and the action only: details may name users, never secrets, but stay out of logs.
      logger.error("management event not published after commit (the PostgreSQL row remains)", {
        eventId: event.eventId,
        tenantId: event.tenantId,
        action: event.details.case === "management" ? event.details.value.action : undefined,
        error: error instanceof Error ? error.message : String(error),
      });
    }
  }
}
