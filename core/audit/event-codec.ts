/**
 * The wire form of an event on JetStream: the `Event` message in protobuf binary.
 * Producers encode with {@link encodeEvent}; the processor decodes with
 * {@link decodeEvent}, which never throws: a message it cannot use is a value the
 * processor dead-letters, not an exception that would crash-loop it.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  type Event,
  EventSchema,
  EventType,
} from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";

export const EVENT_SCHEMA_VERSION = 1;
/** The largest event accepted anywhere (API, stream, processor): 64 KiB encoded. */
export const MAX_EVENT_BYTES = 64 * 1024;
/** The header naming the schema of a message's body. */
export const EVENT_SCHEMA_HEADER = "Fulcrum-Event-Schema";
export const EVENT_SCHEMA_NAME = "fulcrum.eventstore.v1.Event";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

export function encodeEvent(event: Event): Uint8Array {
  return toBinary(EventSchema, { ...event, schemaVersion: EVENT_SCHEMA_VERSION });
}

export type DecodedEvent = { ok: true; event: Event } | { ok: false; reason: string };

/** Decodes and checks what storage relies on: id, tenant, type, size. */
export function decodeEvent(bytes: Uint8Array): DecodedEvent {
  if (bytes.byteLength > MAX_EVENT_BYTES) {
    return { ok: false, reason: `event is ${bytes.byteLength} bytes (limit ${MAX_EVENT_BYTES})` };
  }
  let event: Event;
  try {
    event = fromBinary(EventSchema, bytes);
  } catch (error) {
    return { ok: false, reason: `not a protobuf Event: ${(error as Error).message}` };
  }
  const problem = storageProblem(event);
  return problem ? { ok: false, reason: problem } : { ok: true, event };
}

/** Why an event cannot be stored, or undefined when it can. */
export function storageProblem(event: Event): string | undefined {
  if (event.schemaVersion > EVENT_SCHEMA_VERSION) {
    return `schema_version ${event.schemaVersion} is newer than this reader (${EVENT_SCHEMA_VERSION})`;
  }
  if (!UUID_V7.test(event.eventId)) return "event_id is not a lower-case UUIDv7";
  if (!event.tenantId) return "tenant_id is empty";
  if (event.eventType === EventType.UNSPECIFIED || EventType[event.eventType] === undefined) {
    return `event_type ${event.eventType} is not a known type`;
  }
  if (!event.timestamp) return "timestamp is missing";
  return undefined;
}

/** A new event with the current schema version. */
export function newEvent(init: Parameters<typeof create<typeof EventSchema>>[1]): Event {
  return create(EventSchema, { ...init, schemaVersion: EVENT_SCHEMA_VERSION });
}
