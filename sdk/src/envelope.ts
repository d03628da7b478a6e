import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
// One implementation with the server (core/ids); `npm run build` in sdk/ bundles it in.
import { uuidv7 } from "../../core/ids/uuidv7.js";
import { type EventSchema, EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { FulcrumClient, GuardContext } from "./client.js";
import type { Decision } from "./decision.js";
import { FulcrumError } from "./errors.js";
import { SDK_SOURCE } from "./version.js";

export interface EnvelopeOptions {
  workflowId: string;
  /** Id of this execution; a UUIDv7 when unset. Every event carries it. */
  executionId?: string;
  /** Envelope id, when one was created through EnvelopeService. */
  envelopeId?: string;
  userId?: string;
  userRoles?: string[];
  /** Labels on every event of the execution (and the EXECUTION_STARTED payload). */
  metadata?: Record<string, string>;
}

/**
 * What guard() takes besides the action (`inputText`, `model`, `tools`, `estimatedCost`,
 * `estimatedTokens`, `phase`, `attributes`, ...); the envelope supplies workflow and user.
 */
export type GuardOptions = Omit<GuardContext, "action" | "workflowId" | "envelopeId"> & {
  policyIds?: string[];
  dryRun?: boolean;
  timeoutMs?: number;
  signal?: AbortSignal;
};

export interface LogOptions {
  labels?: Record<string, string>;
}

/** An event that could not be published (the caller was not failed for it). */
export interface FailedEvent {
  eventId: string;
  /** The type as passed to log(), or `execution_started`/`_completed`/`_failed`. */
  type: string;
  executionId: string;
  /** Publish attempts made (1 when the server refused it outright). */
  attempts: number;
  error: FulcrumError;
}

export type EnvelopeStatus = "RUNNING" | "COMPLETED" | "FAILED";

type EventInit = MessageInitShape<typeof EventSchema>;

/**
 * One governed execution. Events are queued and published in order in the
 * background (EventStoreService.PublishEvent), each with a client-generated
 * UUIDv7 event id so retried publishes are stored once; a publish that keeps
 * failing never fails the caller — it lands in `failedEvents` and `onEventError`.
 */
export class Envelope {
  readonly workflowId: string;
  readonly executionId: string;
  readonly envelopeId: string;
  private readonly client: FulcrumClient;
  private readonly options: EnvelopeOptions;
  private readonly labels: Record<string, string>;
  private queue: Promise<void> = Promise.resolve();
  private inFlight = 0;
  private readonly failed: FailedEvent[] = [];
  private state: EnvelopeStatus = "RUNNING";

  constructor(client: FulcrumClient, options: EnvelopeOptions) {
    if (!options?.workflowId) throw new FulcrumError("InvalidArgument", "workflowId is required");
    this.client = client;
    this.options = options;
    this.workflowId = options.workflowId;
    this.executionId = options.executionId ?? uuidv7();
    this.envelopeId = options.envelopeId ?? "";
    this.labels = { ...options.metadata };
    this.log("EXECUTION_STARTED", { workflow_id: this.workflowId, metadata: this.labels });
  }

  get status(): EnvelopeStatus {
    return this.state;
  }

  /** Events queued or being published. */
  get pendingEvents(): number {
    return this.inFlight;
  }

  /** Events given up on (refused, or still failing after every retry). */
  get failedEvents(): readonly FailedEvent[] {
    return this.failed;
  }

  /**
   * The full decision for one step of this execution, from all of the tenant's
   * ACTIVE policies (or `policyIds`). See FulcrumClient.evaluate for failures.
   */
  guard(action: string, options: GuardOptions = {}): Promise<Decision> {
    const { policyIds, dryRun, timeoutMs, signal, ...context } = options;
    return this.client.evaluate(
      {
        userId: this.options.userId,
        userRoles: this.options.userRoles,
        ...context,
        action,
        workflowId: this.workflowId,
        envelopeId: this.envelopeId || undefined,
      },
      {
        ...(policyIds ? { policyIds } : {}),
        ...(dryRun !== undefined ? { dryRun } : {}),
        ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        ...(signal ? { signal } : {}),
      },
    );
  }

  /** `(await guard(action, options)).allowed`: true for ALLOW and WARN. */
  async allowed(action: string, options: GuardOptions = {}): Promise<boolean> {
    return (await this.guard(action, options)).allowed;
  }

  /**
   * Records an event. `type` is an event type name (`"llm_call_completed"`,
   * `"TOOL_INVOKED"`, ...) or any other name, sent as a CUSTOM event. Returns the
   * event id at once; publishing happens in the background (see flush()).
   */
  log(type: string, payload: Record<string, unknown> = {}, options: LogOptions = {}): string {
    const eventId = uuidv7();
    const known = eventTypeOf(type);
    const event: EventInit = {
      eventId,
      // No tenant id: the event is the API key's tenant's.
      executionId: this.executionId,
      envelopeId: this.envelopeId,
      workflowId: this.workflowId,
      eventType: known ?? EventType.CUSTOM,
      customType: known ? "" : type.slice(0, 128),
      // Minted once with the id: every retry repeats both, and the event store
      // deduplicates on them (JetStream's Nats-Msg-Id, ClickHouse's sorting key).
      timestamp: timestampFromMs(Date.now()),
      payload: toJsonObject(payload),
      labels: { ...this.labels, ...options.labels },
      source: SDK_SOURCE,
    };
    this.inFlight++;
    this.queue = this.queue.then(() => this.publish(type, event)).finally(() => this.inFlight--);
    return eventId;
  }

  /** Resolves when every event logged so far is published or given up on. Never rejects. */
  async flush(): Promise<void> {
    let current: Promise<void>;
    do {
      current = this.queue;
      await current;
    } while (current !== this.queue);
  }

  /** Ends the execution successfully: emits EXECUTION_COMPLETED, then flushes. */
  complete(payload: Record<string, unknown> = {}): Promise<void> {
    if (this.state === "RUNNING") {
      this.state = "COMPLETED";
      this.log("EXECUTION_COMPLETED", payload);
    }
    return this.flush();
  }

  /** Ends the execution as failed: emits EXECUTION_FAILED with the error, then flushes. */
  fail(error: unknown, payload: Record<string, unknown> = {}): Promise<void> {
    if (this.state === "RUNNING") {
      this.state = "FAILED";
      const detail =
        error instanceof Error
          ? { error: error.message, error_name: error.name }
          : { error: String(error) };
      this.log("EXECUTION_FAILED", { ...payload, ...detail });
    }
    return this.flush();
  }

  /** Runs `fn` in this envelope: completes it when `fn` resolves, fails it (and rethrows) when it throws. */
  async run<T>(fn: (envelope: Envelope) => Promise<T> | T): Promise<T> {
    let result: T;
    try {
      result = await fn(this);
    } catch (error) {
      await this.fail(error);
      throw error;
    }
    await this.complete();
    return result;
  }

  private async publish(type: string, event: EventInit): Promise<void> {
    const { retries, backoffMs, timeoutMs, onError } = this.client.eventSettings;
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
          const failure: FailedEvent = {
            eventId: event.eventId ?? "",
            type,
            executionId: this.executionId,
            attempts,
            error,
          };
          this.failed.push(failure);
          try {
            onError?.(failure);
          } catch {
            // A throwing callback must not break the queue.
          }
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

function toJsonObject(payload: Record<string, unknown>): JsonObject {
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
