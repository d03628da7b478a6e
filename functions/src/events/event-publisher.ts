/**
 * Publishes events of the management API (MANAGEMENT_CHANGE) to JetStream:
 * `fulcrum.events.<tenant>.<type>`, protobuf binary, `Nats-Msg-Id` = event id, so a
 * repeated publish inside the stream's duplicate window is stored once.
 *
 * Bounded: a few attempts with a short deadline each, and no waiting at all while NATS
 * is unreachable or the connection is between reconnects — a management call waits at most a few seconds
 * for its audit event, never indefinitely. A publish that finds no stream (deleted)
 * re-creates it (`ensureEventStreams`) and tries again.
 */
import { encodeEvent } from "../../../core/audit/event-codec.js";
import { eventPublishOptions, isNoStream } from "../../../core/audit/event-stream.js";
import { eventSubject } from "../../../core/audit/event-subject.js";
import type { Event } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { EventNats } from "./nats-connection.js";

export interface PublishedEvent {
  sequence: number;
  /** JetStream had this event id already (a retry). */
  duplicate: boolean;
}

export interface EventPublisher {
  /** @throws Error when every attempt failed (the caller decides what that means). */
  publish(event: Event): Promise<PublishedEvent>;
}

export interface EventPublisherOptions {
  /** Attempts in all (default 3). */
  attempts?: number;
  /** Deadline of one attempt's acknowledgement in ms (default 1000). */
  timeoutMs?: number;
  /** Pause before the second attempt in ms, doubled after (default 100). */
  backoffMs?: number;
}

export class EventPublishError extends Error {
  override name = "EventPublishError";
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function createEventPublisher(
  nats: EventNats,
  options: EventPublisherOptions = {},
): EventPublisher {
  const attempts = Math.max(1, options.attempts ?? 3);
  const timeout = options.timeoutMs ?? 1000;
  const backoff = options.backoffMs ?? 100;
  return {
    async publish(event) {
      const subject = eventSubject(event.tenantId, event.eventType);
      const data = encodeEvent(event);
      let last: unknown;
      for (let attempt = 0; attempt < attempts; attempt++) {
        if (attempt > 0) await sleep(backoff * 2 ** (attempt - 1));
        let js: Awaited<ReturnType<EventNats["get"]>>["js"];
        try {
          ({ js } = await nats.get());
        } catch (error) {
          // NATS unreachable: retrying within milliseconds would only delay the caller.
          last = error;
          break;
        }
        try {
          if (!nats.connected()) throw new EventPublishError("NATS is reconnecting");
          const ack = await js.publish(subject, data, eventPublishOptions(event.eventId, timeout));
          return { sequence: ack.seq, duplicate: ack.duplicate };
        } catch (error) {
          last = error;
          if (isNoStream(error)) {
            await nats.ensureStreams().catch((ensureError: unknown) => {
              last = ensureError;
            });
          }
        }
      }
      throw new EventPublishError(`event ${event.eventId} not published: ${String(last)}`, {
        cause: last,
      });
    },
  };
}
