/**
 * The audit streams' configuration and the one way to create or update them. Every
 * producer and the processor call {@link ensureEventStreams} when they connect, and
 * producers call it again when a publish finds no stream, so a deleted stream comes
 * back on the next publish (the operational runbook relies on that).
 *
 * Transport-agnostic: works on any `@nats-io/nats-core` connection (TCP in Node,
 * WebSocket in a Worker).
 */
import {
  DiscardPolicy,
  type JetStreamManager,
  StorageType,
  type StreamConfig,
} from "@nats-io/jetstream";
import { headers, type MsgHdrs, nanos } from "@nats-io/nats-core";
import { EVENT_SCHEMA_HEADER, EVENT_SCHEMA_NAME } from "./event-codec.js";
import {
  DEAD_LETTER_STREAM,
  DEAD_LETTER_SUBJECT_PREFIX,
  EVENTS_STREAM,
  EVENTS_SUBJECT_PREFIX,
} from "./event-subject.js";

export interface EventStreamSettings {
  /** Events older than this leave the stream (ClickHouse keeps them for 90 days). */
  maxAgeMs: number;
  /** The stream drops its oldest events beyond this size. */
  maxBytes: number;
  /** Publishes with the same Nats-Msg-Id within this window are stored once. */
  duplicateWindowMs: number;
}

export const DEFAULT_EVENT_STREAM_SETTINGS: EventStreamSettings = {
  maxAgeMs: 7 * 24 * 3600_000,
  maxBytes: 10 * 1024 ** 3,
  duplicateWindowMs: 2 * 60_000,
};

/** Dead letters are kept for people to look at: 30 days, 1 GiB. */
const DEAD_LETTER_MAX_AGE_MS = 30 * 24 * 3600_000;
const DEAD_LETTER_MAX_BYTES = 1024 ** 3;

type NamedStreamConfig = Partial<StreamConfig> & { name: string };

export function eventStreamConfig(settings: EventStreamSettings): NamedStreamConfig {
  return {
    name: EVENTS_STREAM,
    subjects: [`${EVENTS_SUBJECT_PREFIX}.>`],
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(settings.maxAgeMs),
    max_bytes: settings.maxBytes,
    duplicate_window: nanos(settings.duplicateWindowMs),
  };
}

export function deadLetterStreamConfig(): NamedStreamConfig {
  return {
    name: DEAD_LETTER_STREAM,
    subjects: [`${DEAD_LETTER_SUBJECT_PREFIX}.>`],
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(DEAD_LETTER_MAX_AGE_MS),
    max_bytes: DEAD_LETTER_MAX_BYTES,
  };
}

/** Creates each stream that is missing and updates one whose settings differ. */
export async function ensureEventStreams(
  jsm: JetStreamManager,
  settings: EventStreamSettings,
): Promise<void> {
  await ensureStream(jsm, eventStreamConfig(settings));
  await ensureStream(jsm, deadLetterStreamConfig());
}

async function ensureStream(jsm: JetStreamManager, wanted: NamedStreamConfig): Promise<void> {
  const name = wanted.name;
  const existing = await jsm.streams.info(name).catch((error: unknown) => {
    if (isStreamNotFound(error)) return undefined;
    throw error;
  });
  if (!existing) {
    try {
      await jsm.streams.add(wanted);
      return;
    } catch (error) {
      // Another producer created it between our info and add: fall through to compare.
      if (!/already in use/i.test(String(error))) throw error;
    }
  }
  const current = existing?.config ?? (await jsm.streams.info(name)).config;
  const differs = (Object.keys(wanted) as (keyof StreamConfig)[]).some(
    (key) => JSON.stringify(current[key]) !== JSON.stringify(wanted[key]),
  );
  if (differs) await jsm.streams.update(name, { ...current, ...wanted });
}

export function isStreamNotFound(error: unknown): boolean {
  return (
    (error instanceof Error && error.name === "StreamNotFoundError") ||
    /stream not found/i.test(String(error))
  );
}

/**
 * A publish that found no stream on its subject (deleted, or not created yet). The
 * client reports that as "jetstream is not enabled" with the "no responders" status
 * as its cause, so the whole cause chain is looked at.
 */
export function isNoStream(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e !== undefined && depth < 5; depth++) {
    if (
      (e instanceof Error &&
        (e.name === "NoRespondersError" || e.name === "StreamNotFoundError")) ||
      /no responders|stream not found|503/i.test(String(e))
    ) {
      return true;
    }
    e = e instanceof Error ? e.cause : undefined;
  }
  return false;
}

/**
 * The stream settings from an entry point's environment (each entry point's config
 * calls this once): EVENTS_STREAM_MAX_AGE_HOURS (168), EVENTS_STREAM_MAX_BYTES
 * (10 GiB), EVENTS_DUPLICATE_WINDOW_SECONDS (120). Throws a message naming the
 * variable when one is not a positive integer.
 */
export function parseEventStreamSettings(
  values: Record<string, string | undefined>,
): EventStreamSettings {
  const positive = (name: string, fallback: number, scale: number): number => {
    const raw = values[name];
    if (raw === undefined || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isSafeInteger(n) || n <= 0) {
      throw new Error(`${name} must be a positive integer, got ${JSON.stringify(raw)}`);
    }
    return n * scale;
  };
  const d = DEFAULT_EVENT_STREAM_SETTINGS;
  return {
    maxAgeMs: positive("EVENTS_STREAM_MAX_AGE_HOURS", d.maxAgeMs, 3600_000),
    maxBytes: positive("EVENTS_STREAM_MAX_BYTES", d.maxBytes, 1),
    duplicateWindowMs: positive("EVENTS_DUPLICATE_WINDOW_SECONDS", d.duplicateWindowMs, 1000),
  };
}

/**
 * The publish options of every event on the stream: `Nats-Msg-Id` = the event id (the
 * stream's duplicate window stores a repeated publish once) and the schema header.
 */
export function eventPublishOptions(
  eventId: string,
  timeoutMs: number,
): { msgID: string; headers: MsgHdrs; timeout: number } {
  const h = headers();
  h.set(EVENT_SCHEMA_HEADER, EVENT_SCHEMA_NAME);
  return { msgID: eventId, headers: h, timeout: timeoutMs };
}
