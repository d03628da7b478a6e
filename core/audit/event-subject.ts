/**
 * Names of the audit pipeline's JetStream streams and subjects, shared by every
 * producer (edge, functions) and the event processor.
 *
 * Subjects are `fulcrum.events.<tenant>.<type>`: a consumer can follow one tenant
 * (`fulcrum.events.<tenant>.>`) or one type across tenants without decoding anything.
 */
import { EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";

export const EVENTS_STREAM = "FULCRUM_EXECUTION_EVENTS";
export const EVENTS_SUBJECT_PREFIX = "fulcrum.events";
/** Events the processor could not store (malformed, or failed too many times). */
export const DEAD_LETTER_STREAM = "FULCRUM_DEAD_LETTERS";
export const DEAD_LETTER_SUBJECT_PREFIX = "fulcrum.deadletter";

/** Tenant ids are UUIDs or slugs; anything else cannot be a subject token. */
const SUBJECT_TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

/** `EVENT_TYPE_POLICY_VIOLATION` → `policy_violation`. */
export function eventTypeToken(type: EventType): string {
  const name = EventType[type];
  if (name === undefined || type === EventType.UNSPECIFIED) {
    throw new RangeError(`not an event type: ${type}`);
  }
  return name.toLowerCase();
}

/** The short upper-case name stored in ClickHouse: `POLICY_VIOLATION`. */
export function eventTypeName(type: EventType): string {
  return eventTypeToken(type).toUpperCase();
}

/** The inverse of {@link eventTypeName}; undefined for an unknown name. */
export function eventTypeFromName(name: string): EventType | undefined {
  const value = (EventType as unknown as Record<string, number>)[name];
  return typeof value === "number" && value !== EventType.UNSPECIFIED ? value : undefined;
}

export function eventSubject(tenantId: string, type: EventType): string {
  if (!SUBJECT_TOKEN.test(tenantId)) throw new RangeError(`tenant id unfit for a subject`);
  return `${EVENTS_SUBJECT_PREFIX}.${tenantId}.${eventTypeToken(type)}`;
}

/** Every event of one tenant. */
export function tenantEventsSubject(tenantId: string): string {
  if (!SUBJECT_TOKEN.test(tenantId)) throw new RangeError(`tenant id unfit for a subject`);
  return `${EVENTS_SUBJECT_PREFIX}.${tenantId}.>`;
}

/**
 * Where the processor parks an event it cannot store. `tenant` is the subject's tenant
 * token (the event may be too broken to have one of its own).
 */
export function deadLetterSubject(originalSubject: string): string {
  const rest = originalSubject.startsWith(`${EVENTS_SUBJECT_PREFIX}.`)
    ? originalSubject.slice(EVENTS_SUBJECT_PREFIX.length + 1)
    : "unknown";
  return `${DEAD_LETTER_SUBJECT_PREFIX}.${rest}`;
}
