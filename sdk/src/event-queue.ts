import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import { type EventSchema, EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { FulcrumClient } from "./client.js";
import { FulcrumError } from "./errors.js";

/** An event that could not be published (the caller was not failed for it). */
export interface FailedEvent {
  eventId: string;
  /**
   * The type as passed to log(), or `EXECUTION_STARTED`/`_COMPLETED`/`_FAILED`; for a
   * managed envelope whose final status could not be recorded while run() rethrew the
   * block's error, `EXECUTION_FAILED` / `EXECUTION_TERMINATED` with an empty eventId.
   */
  type: string;
  executionId: string;
  /** Publish attempts made (1 when the server refused it outright). */
  attempts: number;
  error: FulcrumError;
}

export type EventInit = MessageInitShape<typeof EventSchema>;

/**
 * An envelope's events, published in order in the background
 * (EventStoreService.PublishEvent). A publish that keeps failing never fails the
 * caller — it lands in `failed` and the client's `onEventError`.
 */
export class EventQueue {
  private queue: Promise<void> = Promise.resolve();
  private inFlight = 0;
  readonly failed: FailedEvent[] = [];

  constructor(
    private readonly client: FulcrumClient,
    private readonly executionId: string,
  ) {}

  get pending(): number {
    return this.inFlight;
  }

  /** Queues `event`; `prepare` runs just before its first attempt (e.g. fills the envelope id). */
  push(type: string, event: EventInit, prepare?: (event: EventInit) => Promise<void>): void {
    this.inFlight++;
    this.queue = this.queue
      .then(async () => {
        await prepare?.(event);
        await this.publish(type, event);
      })
      .finally(() => this.inFlight--);
  }

  /** Resolves when every event queued so far is published or given up on. Never rejects. */
  async flush(): Promise<void> {
    let current: Promise<void>;
    do {
      current = this.queue;
      await current;
    } while (current !== this.queue);
  }

  /** Records a failure and tells the client's `onEventError` (a throwing callback is ignored). */
  report(failure: FailedEvent): void {
    this.failed.push(failure);
    try {
      this.client.eventSettings.onError?.(failure);
    } catch {
      // A throwing callback must not break the queue.
    }
  }

  private async publish(type: string, event: EventInit): Promise<void> {
    const { retries, backoffMs, timeoutMs } = this.client.eventSettings;
    let attempts = 0;
    for (;;) {
      attempts++;
      try {
        await this.client.events.publishEvent(
          { event },
          { headers: this.client.headers, timeoutMs },
        );
        return;
      } catch (reason) {
        const error = FulcrumError.from(reason);
        if (!error.retryable || attempts > retries) {
          this.report({
            eventId: event.eventId ?? "",
            type,
            executionId: this.executionId,
            attempts,
            error,
          });
          return;
        }
        await sleep(Math.min(backoffMs * 2 ** (attempts - 1), 5000));
      }
    }
  }
}

/** `"llm_call_completed"`, `"LLM_CALL_COMPLETED"` or `"EVENT_TYPE_LLM_CALL_COMPLETED"`; else undefined. */
export function eventTypeOf(type: string): EventType | undefined {
  const name = type.toUpperCase().replace(/^EVENT_TYPE_/, "");
  const value = (EventType as unknown as Record<string, number | string>)[name];
  if (typeof value !== "number" || value === EventType.UNSPECIFIED || value === EventType.CUSTOM) {
    return undefined;
  }
  return value;
}

export function toJsonObject(payload: Record<string, unknown>): JsonObject {
  try {
    return JSON.parse(
      JSON.stringify(payload, (_key, value) =>
        typeof value === "bigint" ? value.toString() : value,
      ) ?? "{}",
    ) as JsonObject;
  } catch (error) {
    return { unserializable_payload: error instanceof Error ? error.message : String(error) };
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
