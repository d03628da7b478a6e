import { create } from "@bufbuild/protobuf";
import { timestampDate, timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import {
  EVENT_SCHEMA_VERSION,
  encodeEvent,
  MAX_EVENT_BYTES,
} from "../../../core/audit/event-codec.js";
import { FulcrumError, invalid } from "../../../core/errors/fulcrum-error.js";
import type { Logger } from "../../../core/logging/logger.js";
import type { Metrics } from "../../../core/observability/metrics.js";
import { type Event, EventSchema } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import {
  type EventStoreService,
  PublishEventBatchResponseSchema,
  PublishEventResponseSchema,
  PublishEventResultSchema,
} from "../../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import type { PublishResult } from "../audit/audit-buffer.js";
import { type AuditShards, outgoing } from "../audit/audit-shards.js";
import type { OutgoingEvent } from "../audit/jetstream-link.js";
import type { PublishDedupe } from "../audit/publish-dedupe.js";
import { caller } from "../auth/edge-context.js";

/** ClickHouse keeps events 90 days (TTL): an older one would be dropped silently on insert. */
const MAX_AGE_MS = 90 * 24 * 3600_000;
/** Clocks drift; an hour ahead is the most we take. */
const MAX_FUTURE_MS = 3600_000;

const QUERIES_ELSEWHERE =
  "the edge only publishes events; query them through the management API's EventStoreService";

export interface EventStoreServiceDeps {
  audit: AuditShards;
  dedupe: PublishDedupe;
  metrics: Metrics;
  logger: Logger;
  now: () => number;
}

/**
 * EventStoreService at the edge: PublishEvent and PublishEventBatch for SDKs (API key
 * with the `check` scope), through the audit buffer, which publishes to JetStream at
 * once and keeps what NATS cannot take now. The queries are the management API's.
 */
export function eventPublishService(
  deps: EventStoreServiceDeps,
): Partial<ServiceImpl<typeof EventStoreService>> {
  async function publish(
    ctx: HandlerContext,
    events: readonly Event[],
    field: (i: number) => string,
  ) {
    const tenantId = caller(ctx).tenant_id;
    const nowMs = deps.now();
    const prepared = await Promise.all(
      events.map((event, i) => prepare(deps, event, field(i), tenantId, nowMs)),
    );
    let results: PublishResult[];
    try {
      results = await deps.audit.any().publishNow(prepared);
    } catch (error) {
      deps.logger.error("audit buffer unreachable for PublishEvent", { error: String(error) });
      throw new FulcrumError("Unavailable", "the event could not be stored; retry", {
        cause: error,
        retry: true,
      });
    }
    for (const r of results) {
      const outcome = r.buffered ? "buffered" : r.duplicate ? "duplicate" : "published";
      deps.metrics.increment("fulcrum_edge_audit_events_published_total", { outcome });
    }
    return results;
  }

  return {
    async publishEvent(req, ctx) {
      const [result] = await publish(ctx, req.event ? [req.event] : [], () => "event");
      if (!result) throw invalid("event", "is required");
      return create(PublishEventResponseSchema, {
        eventId: result.eventId,
        streamSequence: BigInt(result.sequence),
        storedAt: timestampFromMs(result.storedAt),
        duplicate: result.duplicate,
      });
    },

    async publishEventBatch(req, ctx) {
      const results = await publish(ctx, req.events, (i) => `events[${i}]`);
      const duplicates = results.filter((r) => r.duplicate).length;
      return create(PublishEventBatchResponseSchema, {
        results: results.map((r, index) =>
          create(PublishEventResultSchema, {
            index,
            eventId: r.eventId,
            streamSequence: BigInt(r.sequence),
            storedAt: timestampFromMs(r.storedAt),
            duplicate: r.duplicate,
          }),
        ),
        publishedCount: results.length - duplicates,
        duplicateCount: duplicates,
        failedCount: 0,
      });
    },

    async queryEvents() {
      throw new FulcrumError("Unimplemented", QUERIES_ELSEWHERE);
    },
    async getExecutionEvents() {
      throw new FulcrumError("Unimplemented", QUERIES_ELSEWHERE);
    },
    async getEventStoreStats() {
      throw new FulcrumError("Unimplemented", QUERIES_ELSEWHERE);
    },
    // biome-ignore lint/correctness/useYield: answers Unimplemented before streaming anything.
    async *streamEvents() {
      // Thrown while the stream is read, past the error interceptor: a ConnectError keeps its code.
      throw new ConnectError(QUERIES_ELSEWHERE, Code.Unimplemented);
    },
  };
}

/**
 * The event as it is stored: the key's tenant, a timestamp (default now, within
 * [now − 90 days, now + 1 h]), its id (the client's, lower-cased, or the deduplicated
 * one), no output fields; encoded and checked against MAX_EVENT_BYTES.
 */
async function prepare(
  deps: EventStoreServiceDeps,
  sent: Event,
  field: string,
  tenantId: string,
  nowMs: number,
): Promise<OutgoingEvent> {
  if (sent.tenantId !== "" && sent.tenantId !== tenantId) {
    throw new FulcrumError(
      "PermissionDenied",
      `${field}.tenant_id names another tenant than the API key's: leave it empty (the key decides) or use a key of that tenant`,
      { field: `${field}.tenant_id` },
    );
  }
  if (sent.timestamp) {
    const at = timestampDate(sent.timestamp).getTime();
    if (at < nowMs - MAX_AGE_MS) {
      throw invalid(
        `${field}.timestamp`,
        "is more than 90 days in the past; events are kept 90 days, so it would never be stored",
      );
    }
    if (at > nowMs + MAX_FUTURE_MS) {
      throw invalid(
        `${field}.timestamp`,
        "is more than 1 hour in the future; check the clock, or leave it unset (the server's time is used)",
      );
    }
  }
  const base = create(EventSchema, {
    ...sent,
    tenantId,
    sequence: 0n,
    storedAt: undefined,
    schemaVersion: 0,
  });
  const eventId = sent.eventId ? sent.eventId.toLowerCase() : await deps.dedupe.eventIdFor(base);
  const event = create(EventSchema, {
    ...base,
    eventId,
    timestamp: sent.timestamp ?? timestampFromMs(nowMs),
    schemaVersion: EVENT_SCHEMA_VERSION,
  });
  const body = encodeEvent(event);
  if (body.byteLength > MAX_EVENT_BYTES) {
    throw invalid(
      field,
      `the event is ${body.byteLength} bytes encoded, over the ${MAX_EVENT_BYTES}-byte (64 KiB) limit; move large data out of payload and labels`,
    );
  }
  return outgoing(event, body);
}
