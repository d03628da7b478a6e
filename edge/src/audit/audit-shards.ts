import { encodeEvent } from "../../../core/audit/event-codec.js";
import { eventSubject } from "../../../core/audit/event-subject.js";
import type { Event } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { AuditBuffer } from "./audit-buffer.js";
import type { OutgoingEvent } from "./jetstream-link.js";

/**
 * The audit buffer instances (`audit-0` … `audit-<n-1>`) events are spread over, so
 * no single Durable Object carries the whole edge's decision rate. Stubs are made per
 * call: a stub belongs to the request that made it.
 */
export class AuditShards {
  constructor(
    private readonly buffers: DurableObjectNamespace<AuditBuffer>,
    readonly count: number,
  ) {}

  /** A random instance: any of them delivers, and the event id deduplicates. */
  any(): DurableObjectStub<AuditBuffer> {
    return this.shard(Math.floor(Math.random() * this.count));
  }

  shard(n: number): DurableObjectStub<AuditBuffer> {
    return this.buffers.get(this.buffers.idFromName(`audit-${n}`));
  }
}

/** An event as the buffer stores and publishes it: id, subject, protobuf binary. */
export function outgoing(event: Event, body: Uint8Array = encodeEvent(event)): OutgoingEvent {
  return { id: event.eventId, subject: eventSubject(event.tenantId, event.eventType), body };
}
