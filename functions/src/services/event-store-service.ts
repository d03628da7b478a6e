/**
 * EventStoreService's read side: the audit events of the caller's tenant, from
 * ClickHouse (QueryEvents, GetExecutionEvents, the counts of GetEventStoreStats) and
 * JetStream (StreamEvents, the stream part of GetEventStoreStats).
 *
 * Who may call: any tenant key with the `manage` scope (the auth interceptor), whatever
 * its user's role — viewer, policy_author and admin all hold `events.read`
 * (permissions.ts): the audit trail is what a viewer is for. `check` keys (the edge's
 * decisions) and the platform operator's key may not. The tenant is always the key's;
 * a request naming another tenant is PermissionDenied, not an empty answer.
 *
 * PublishEvent / PublishEventBatch are the edge's (the SDKs' ingest, next to the
 * decisions): here they answer Unimplemented, saying so.
 */
import type { ServiceImpl } from "@connectrpc/connect";
import type { StreamInfo } from "@nats-io/jetstream";
import { EVENTS_STREAM } from "../../../core/audit/event-subject.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { Event } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { EventStoreService } from "../../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { requirePermission } from "../auth/permissions.js";
import { type TenantPrincipal, tenantCaller } from "../auth/principal.js";
import type { FunctionsDeps } from "../deps.js";
import { followEvents } from "../events/event-follow.js";
import { executionEventsQuery, queryEventsQuery, statsQuery } from "../events/event-query.js";
import { readPage, readStats, timestampOf } from "../events/event-reader.js";

type Deps = Pick<FunctionsDeps, "clickhouse" | "nats" | "logger">;

/** The caller's tenant, refusing a request that names another one. */
function readerTenant(caller: TenantPrincipal, requested: string): string {
  requirePermission(caller, "events.read");
  if (requested && requested.toLowerCase() !== caller.tenantId.toLowerCase()) {
    throw new FulcrumError(
      "PermissionDenied",
      "tenant_id names another tenant: an API key reads only its own tenant's events (leave tenant_id empty)",
      { field: "tenant_id" },
    );
  }
  return caller.tenantId;
}

function natsUnavailable(cause: unknown): FulcrumError {
  return new FulcrumError(
    "Unavailable",
    "the event stream (NATS JetStream) is unavailable; retry later",
    {
      cause,
      retry: true,
    },
  );
}

function servedByEdge(method: string): never {
  throw new FulcrumError(
    "Unimplemented",
    `${method} is served by the edge Worker (POST <edge URL>/fulcrum.eventstore.v1.EventStoreService/${method}), not by the management API; send events there`,
  );
}

export function eventStoreService(deps: Deps): ServiceImpl<typeof EventStoreService> {
  return {
    publishEvent: () => servedByEdge("PublishEvent"),
    publishEventBatch: () => servedByEdge("PublishEventBatch"),

    async queryEvents(req, ctx) {
      const tenant = readerTenant(tenantCaller(ctx), req.tenantId);
      return readPage(deps.clickhouse, queryEventsQuery(tenant, req));
    },

    async getExecutionEvents(req, ctx) {
      const tenant = readerTenant(tenantCaller(ctx), "");
      return readPage(deps.clickhouse, executionEventsQuery(tenant, req));
    },

    async getEventStoreStats(req, ctx) {
      const tenant = readerTenant(tenantCaller(ctx), req.tenantId);
      const stats = await readStats(deps.clickhouse, statsQuery(tenant));
      let info: StreamInfo;
      try {
        const { jsm } = await deps.nats.get();
        info = await jsm.streams.info(EVENTS_STREAM);
      } catch (error) {
        throw natsUnavailable(error);
      }
      return {
        streamName: EVENTS_STREAM,
        totalEvents: stats.total,
        eventsByType: stats.byType,
        firstSequence: BigInt(info.state.first_seq),
        lastSequence: BigInt(info.state.last_seq),
        streamBytes: BigInt(info.state.bytes),
        firstEventAt: timestampOf(stats.firstAt),
        lastEventAt: timestampOf(stats.lastAt),
        duplicateWindowSeconds: BigInt(Math.floor((info.config.duplicate_window ?? 0) / 1e9)),
      };
    },

    async *streamEvents(req, ctx) {
      const tenant = readerTenant(tenantCaller(ctx), req.tenantId);
      let events: AsyncIterable<Event>;
      try {
        events = await followEvents(
          deps.nats,
          {
            tenantId: tenant,
            executionId: req.executionId,
            workflowId: req.workflowId,
            eventTypes: req.eventTypes,
            labels: req.labels,
            afterSequence: req.afterSequence,
          },
          ctx.signal,
        );
      } catch (error) {
        throw natsUnavailable(error);
      }
      for await (const event of events) yield { event };
    },
  };
}
