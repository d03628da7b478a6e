import { create, toBinary } from "@bufbuild/protobuf";
import type { Redis } from "@upstash/redis";
import { withDeadline } from "../../../core/async/deadline.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { uuidv7 } from "../../../core/ids/uuidv7.js";
import { type Event, EventSchema } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";

const UNAVAILABLE =
  "events without an event_id are deduplicated through the key store, which is unreachable; retry, or set event_id";

/**
 * Server-side deduplication of SDK retries that carry no event id (the public SDK
 * retries a publish up to 5 times without one). The retried request is byte-identical,
 * so the event's canonical binary — as the client sent it, with the key's tenant, and
 * without event_id and the output fields (sequence, stored_at, schema_version) —
 * fingerprints it; a timestamp the client set is part of it, a missing one stays
 * missing (the server's clock would differ between retries). The first publish mints
 * the event id and stores it under the fingerprint for the duplicate window
 * (`SET NX EX`); a retry finds it and publishes under the same id, which JetStream
 * (Nats-Msg-Id) and ClickHouse (ReplacingMergeTree) store once.
 */
export class PublishDedupe {
  constructor(
    private readonly options: {
      redis: Redis;
      /** `<namespace>:events:dedupe` */
      prefix: string;
      windowSeconds: number;
      timeoutMs: number;
    },
  ) {}

  /**
   * The event id for `event` (tenant already the key's, timestamp as the client sent
   * it): the one an earlier identical publish got, or a new UUIDv7.
   *
   * @throws FulcrumError("Unavailable") when Redis does not answer in time.
   */
  async eventIdFor(event: Event): Promise<string> {
    const key = `${this.options.prefix}:${event.tenantId}:${await fingerprint(event)}`;
    const id = uuidv7();
    try {
      return await withDeadline(this.claim(key, id), this.options.timeoutMs, "no answer");
    } catch (error) {
      if (error instanceof FulcrumError) throw error;
      throw new FulcrumError("Unavailable", UNAVAILABLE, { cause: error, retry: true });
    }
  }

  private async claim(key: string, id: string): Promise<string> {
    const { redis, windowSeconds } = this.options;
    // Twice at most: the stored id may expire between the SET and the GET.
    for (let attempt = 0; attempt < 2; attempt++) {
      const set = await redis.set(key, id, { nx: true, ex: windowSeconds });
      if (set === "OK") return id;
      const existing = await redis.get<string>(key);
      if (typeof existing === "string" && existing !== "") return existing;
    }
    return id;
  }
}

/** SHA-256 (hex) of the event's canonical binary without its id and output fields. */
export async function fingerprint(event: Event): Promise<string> {
  const canonical = create(EventSchema, {
    ...event,
    eventId: "",
    sequence: 0n,
    storedAt: undefined,
    schemaVersion: 0,
  });
  const digest = await crypto.subtle.digest("SHA-256", toBinary(EventSchema, canonical));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
