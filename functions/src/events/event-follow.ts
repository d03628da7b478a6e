/**
 * StreamEvents: follows the caller's tenant's events on JetStream with an ordered
 * (ephemeral, flow-controlled, self-recreating) consumer whose subject filter is
 * `fulcrum.events.<tenant>.>` — the tenant from the caller's key, so the server never
 * sends another tenant's message to this process. One event type narrows the subject
 * to `fulcrum.events.<tenant>.<type>`; every other filter is applied here, after
 * decoding. Messages that do not decode are skipped (the processor dead-letters them).
 *
 * Ends when the caller goes away (`signal`), which stops the consumer.
 */

import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DeliverPolicy } from "@nats-io/jetstream";
import { decodeEvent } from "../../../core/audit/event-codec.js";
import {
  EVENTS_STREAM,
  eventSubject,
  tenantEventsSubject,
} from "../../../core/audit/event-subject.js";
import type { Event, EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { EventNats } from "./nats-connection.js";

export interface FollowFilter {
  tenantId: string;
  executionId: string;
  workflowId: string;
  eventTypes: readonly EventType[];
  labels: Readonly<Record<string, string>>;
  /** Replay stored events after this sequence first; 0: only new events. */
  afterSequence: bigint;
}

export function matchesFilter(event: Event, filter: FollowFilter): boolean {
  if (event.tenantId !== filter.tenantId) return false;
  if (filter.executionId && event.executionId !== filter.executionId) return false;
  if (filter.workflowId && event.workflowId !== filter.workflowId) return false;
  if (filter.eventTypes.length > 0 && !filter.eventTypes.includes(event.eventType)) return false;
  for (const [key, value] of Object.entries(filter.labels)) {
    if (event.labels[key] !== value) return false;
  }
  return true;
}

/** The consumer's subject filter: the tenant's events, or one type of them. */
export function followSubject(filter: FollowFilter): string {
  const [only] = filter.eventTypes;
  return filter.eventTypes.length === 1 && only !== undefined
    ? eventSubject(filter.tenantId, only)
    : tenantEventsSubject(filter.tenantId);
}

/**
 * The matching events as they arrive, with their stream sequence and storage time.
 * Resolves the consumer before yielding, so a NATS failure surfaces at the start.
 */
export async function followEvents(
  nats: EventNats,
  filter: FollowFilter,
  signal: AbortSignal,
): Promise<AsyncIterable<Event>> {
  const { js } = await nats.get();
  const replay = filter.afterSequence > 0n;
  const consumer = await js.consumers.get(EVENTS_STREAM, {
    filter_subjects: followSubject(filter),
    deliver_policy: replay ? DeliverPolicy.StartSequence : DeliverPolicy.New,
    ...(replay ? { opt_start_seq: Number(filter.afterSequence) + 1 } : {}),
    // If this process dies mid-stream, the server drops the consumer after 30 s idle.
    inactive_threshold: 30_000,
  });
  const messages = await consumer.consume();
  // Closing the iterator leaves the server's consumer to its inactivity timeout (5
  // minutes): delete it now, so a dashboard reconnecting often leaves none behind.
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    void messages
      .close()
      .catch(() => undefined)
      .then(() => consumer.delete())
      .catch(() => undefined);
  };
  if (signal.aborted) stop();
  else signal.addEventListener("abort", stop, { once: true });
  return (async function* () {
    try {
      for await (const msg of messages) {
        const decoded = decodeEvent(msg.data);
        if (!decoded.ok || !matchesFilter(decoded.event, filter)) continue;
        const event = decoded.event;
        event.sequence = BigInt(msg.seq);
        event.storedAt = timestampFromDate(new Date(Math.floor(msg.info.timestampNanos / 1e6)));
        yield event;
      }
    } finally {
      signal.removeEventListener("abort", stop);
      stop();
    }
  })();
}
