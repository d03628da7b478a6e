import { DeliverPolicy, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { decodeEvent } from "../../core/audit/event-codec.js";
import { EVENTS_STREAM, tenantEventsSubject } from "../../core/audit/event-subject.js";
import type { Event } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";

/**
 * The events of one tenant stored on the audit stream so far (an ordered consumer from
 * the start), kept when `keep` says so, read until `done` holds for them or `ms` pass.
 * For tests that check what a management call published after its commit.
 */
export async function tenantEvents(
  nc: NatsConnection,
  tenantId: string,
  keep: (event: Event) => boolean,
  done: (kept: Event[]) => boolean,
  ms = 5000,
): Promise<Event[]> {
  const consumer = await jetstream(nc).consumers.get(EVENTS_STREAM, {
    filter_subjects: tenantEventsSubject(tenantId),
    deliver_policy: DeliverPolicy.All,
  });
  const kept: Event[] = [];
  const messages = await consumer.consume();
  const timer = setTimeout(() => void messages.close(), ms);
  try {
    if (done(kept)) return kept;
    for await (const msg of messages) {
      const decoded = decodeEvent(msg.data);
      if (decoded.ok && keep(decoded.event)) kept.push(decoded.event);
      if (done(kept)) break;
    }
  } finally {
    clearTimeout(timer);
    await messages.close();
  }
  return kept;
}
