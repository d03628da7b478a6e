import { timestampFromMs } from "@bufbuild/protobuf/wkt";
// One implementation with the server (core/ids); `npm run build` in sdk/ bundles it in.
import { uuidv7 } from "../../core/ids/uuidv7.js";
import { EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { type ApprovedDecision, type WithApprovalOptions, withApproval } from "./approvals.js";
import type { FulcrumClient, GuardContext } from "./client.js";
import type { Decision } from "./decision.js";
import {
  createEnvelope,
  type EnvelopeGovernance,
  type EnvelopeStatus,
  isFinal,
  transition,
} from "./envelope-lifecycle.js";
import { FulcrumError } from "./errors.js";
import {
  type EventInit,
  EventQueue,
  eventTypeOf,
  type FailedEvent,
  toJsonObject,
} from "./event-queue.js";
import type { Management } from "./management.js";
import { SDK_SOURCE } from "./version.js";

export type { EnvelopeGovernance, EnvelopeStatus, FailedEvent };
export { eventTypeOf };

export interface EnvelopeOptions {
  workflowId: string;
  /** Id of this execution; a UUIDv7 when unset. Every event carries it. */
  executionId?: string;
  /**
   * An envelope created elsewhere (another process, a parent agent): attach to it.
   * Its lifecycle is its creator's: start/complete/fail make no EnvelopeService call.
   */
  envelopeId?: string;
  userId?: string;
  userRoles?: string[];
  /** Labels on every event of the execution (and the envelope's metadata). */
  metadata?: Record<string, string>;
  /**
   * Create the envelope through EnvelopeService (the default when the client has
   * managementUrl). `false`: events only, as in 0.3.
   */
  managed?: boolean;
  /** Managed: the budget the execution is charged to. */
  budgetId?: string;
  /** Managed: the execution's own limits. */
  governance?: EnvelopeGovernance;
  /** Managed: the parent's envelope id, for a sub-agent in another process (see child()). */
  parentEnvelopeId?: string;
}

/** child(): the parent's workflow unless given; the parent is set by the SDK. */
export type ChildEnvelopeOptions = Omit<EnvelopeOptions, "workflowId" | "parentEnvelopeId"> & {
  workflowId?: string;
};

/**
 * What guard() takes besides the action (`inputText`, `model`, `tools`, `arguments`,
 * `estimatedCost`, `estimatedTokens`, `phase`, `attributes`, ...); the envelope supplies
 * workflow, envelope and user.
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

export interface RunOptions {
  /** When the block throws after this signal aborted, the envelope ends TERMINATED, not FAILED. */
  signal?: AbortSignal;
}

/**
 * One governed execution. Managed (the client has managementUrl): the envelope is
 * created through EnvelopeService and moved PENDING → RUNNING by start() and to its
 * final status by complete()/fail()/terminate()/run(); the server emits the lifecycle
 * events. Unmanaged: the SDK emits EXECUTION_STARTED/COMPLETED/FAILED itself. Either
 * way log() queues events (see EventQueue), each with a client UUIDv7 id.
 */
export class Envelope {
  readonly workflowId: string;
  readonly executionId: string;
  /** True when the envelope's lifecycle goes through EnvelopeService. */
  readonly managed: boolean;
  private readonly client: FulcrumClient;
  private readonly options: EnvelopeOptions;
  private readonly parent: Envelope | undefined;
  private readonly labels: Record<string, string>;
  private readonly events: EventQueue;
  private id: string;
  private state: EnvelopeStatus;
  private starting: Promise<Envelope> | undefined;

  constructor(client: FulcrumClient, options: EnvelopeOptions, parent?: Envelope) {
    if (!options?.workflowId) throw new FulcrumError("InvalidArgument", "workflowId is required");
    this.client = client;
    this.options = options;
    this.parent = parent;
    this.workflowId = options.workflowId;
    this.executionId = options.executionId ?? uuidv7();
    this.id = options.envelopeId ?? "";
    this.managed = !options.envelopeId && (options.managed ?? client.hasManagement);
    if (this.managed) client.management("a managed envelope");
    this.labels = {
      ...(parent && !parent.managed ? { parent_execution_id: parent.executionId } : {}),
      ...options.metadata,
    };
    this.events = new EventQueue(client, this.executionId);
    this.state = this.managed ? "PENDING" : "RUNNING";
    if (!this.managed) {
      this.log("EXECUTION_STARTED", { workflow_id: this.workflowId, metadata: this.labels });
    }
  }

  /** The server's envelope id; `""` until a managed envelope has started. */
  get envelopeId(): string {
    return this.id;
  }

  get status(): EnvelopeStatus {
    return this.state;
  }

  /** Events queued or being published. */
  get pendingEvents(): number {
    return this.events.pending;
  }

  /** Events given up on (refused, or still failing after every retry). */
  get failedEvents(): readonly FailedEvent[] {
    return this.events.failed;
  }

  /**
   * Managed: creates the envelope (after its parent's) and moves it to RUNNING; resolves
   * with the envelope, rejects with the FulcrumError that refused it (a suspended budget,
   * a parent not running, a child asking more than its parent: FailedPrecondition or
   * InvalidArgument). Called by guard/log/run on their own; safe to call again (a failed
   * start is tried again, the server deduplicates on the execution id).
   */
  start(): Promise<Envelope> {
    if (!this.managed || this.state !== "PENDING") return Promise.resolve(this);
    this.starting ??= this.open().catch((error: unknown) => {
      this.starting = undefined;
      throw error;
    });
    return this.starting;
  }

  /** A sub-agent's envelope: draws on this one's limits and can never exceed them. */
  child(options: ChildEnvelopeOptions = {}): Envelope {
    return new Envelope(
      this.client,
      {
        userId: this.options.userId,
        userRoles: this.options.userRoles,
        ...options,
        workflowId: options.workflowId ?? this.workflowId,
      },
      this,
    );
  }

  /**
   * The full decision for one step of this execution, from all of the tenant's
   * ACTIVE policies (or `policyIds`), with the envelope's id so its limits and budgets
   * apply. See FulcrumClient.evaluate for failures; a managed envelope that cannot
   * start throws start()'s error.
   */
  async guard(action: string, options: GuardOptions = {}): Promise<Decision> {
    await this.start();
    const { policyIds, dryRun, timeoutMs, signal, ...context } = options;
    return this.client.evaluate(
      {
        userId: this.options.userId,
        userRoles: this.options.userRoles,
        ...context,
        action,
        workflowId: this.workflowId,
        envelopeId: this.id || undefined,
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
   * guard(); on REQUIRE_APPROVAL waits for the reviewer (client.waitForApproval, needs
   * managementUrl) and, when approved, guards the very same call again — the edge allows
   * it once. `decision.approval` says how the wait ended.
   */
  guardWithApproval(
    action: string,
    options: GuardOptions & WithApprovalOptions = {},
  ): Promise<ApprovedDecision> {
    const { approval, onApprovalRequired, ...guard } = options;
    this.client.management("guardWithApproval()");
    return withApproval(
      () => this.guard(action, guard),
      (id, wait) =>
        this.client.waitForApproval(id, { ...wait, signal: wait?.signal ?? guard.signal }),
      { ...(approval ? { approval } : {}), ...(onApprovalRequired ? { onApprovalRequired } : {}) },
    );
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
      envelopeId: this.id,
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
    // A managed envelope's id is known once it started: the event waits for it (and
    // goes without one if the envelope cannot be created).
    const prepare = this.managed
      ? async (e: EventInit) => {
          await this.start().catch(() => {});
          e.envelopeId = this.id;
        }
      : undefined;
    this.events.push(type, event, prepare);
    return eventId;
  }

  /** Resolves when every event logged so far is published or given up on. Never rejects. */
  flush(): Promise<void> {
    return this.events.flush();
  }

  /**
   * Ends the execution successfully (managed: → COMPLETED; else EXECUTION_COMPLETED),
   * then flushes. Managed: rejects when the status cannot be recorded; an envelope that
   * already ended on the server (terminated, timed out) keeps that status.
   */
  complete(payload: Record<string, unknown> = {}): Promise<void> {
    return this.end("COMPLETED", "", payload, payload);
  }

  /** Ends the execution as failed (managed: → FAILED with the error as reason), then flushes. */
  fail(error: unknown, payload: Record<string, unknown> = {}): Promise<void> {
    const name = error instanceof Error ? error.name : "Error";
    const message = error instanceof Error ? error.message : String(error);
    const detail =
      error instanceof Error ? { error: message, error_name: name } : { error: message };
    return this.end("FAILED", `${name}: ${message}`, { ...payload, ...detail }, payload);
  }

  /** Stops the execution from outside its logic (cancelled, aborted): → TERMINATED. */
  terminate(reason = "terminated by the caller"): Promise<void> {
    return this.end("TERMINATED", reason, { reason }, {});
  }

  /**
   * Runs `fn` in this envelope: starts it, completes it when `fn` resolves, fails it
   * (TERMINATED when `signal` aborted) and rethrows when it throws. When the final
   * status cannot be recorded after `fn` threw, `fn`'s error is still the one thrown
   * and the other lands in `failedEvents`.
   */
  async run<T>(fn: (envelope: Envelope) => Promise<T> | T, options: RunOptions = {}): Promise<T> {
    await this.start();
    let result: T;
    try {
      result = await fn(this);
    } catch (error) {
      const aborted = options.signal?.aborted ?? false;
      await (aborted ? this.terminate(abortReason(options.signal)) : this.fail(error)).catch(
        (reason: unknown) =>
          this.events.report({
            eventId: "",
            type: aborted ? "EXECUTION_TERMINATED" : "EXECUTION_FAILED",
            executionId: this.executionId,
            attempts: 1,
            error: FulcrumError.from(reason),
          }),
      );
      throw error;
    }
    await this.complete();
    return result;
  }

  private async open(): Promise<Envelope> {
    const management = this.client.management("a managed envelope");
    const parent = this.parent ? (await this.parent.start()).envelopeId : undefined;
    const created = await createEnvelope(management, {
      workflowId: this.workflowId,
      executionId: this.executionId,
      budgetId: this.options.budgetId ?? "",
      governance: this.options.governance ?? {},
      parentEnvelopeId: parent ?? this.options.parentEnvelopeId ?? "",
      metadata: this.labels,
    });
    this.id = created.envelopeId;
    let status = created.status;
    if (status === "AUTHORIZED") status = await transition(management, this.id, "RUNNING", "");
    if (status !== "RUNNING") {
      throw new FulcrumError(
        "FailedPrecondition",
        `envelope ${this.id} (execution ${this.executionId}) is ${status}, it cannot run`,
      );
    }
    this.state = "RUNNING";
    return this;
  }

  /**
   * Unmanaged: emits EXECUTION_<to> with `event` (once). Managed: the server emits the
   * lifecycle event with `reason`; what the caller passed (`extra`) is logged first as
   * a CUSTOM `execution_result` event, so it is not lost.
   */
  private async end(
    to: "COMPLETED" | "FAILED" | "TERMINATED",
    reason: string,
    event: Record<string, unknown>,
    extra: Record<string, unknown>,
  ): Promise<void> {
    if (!this.managed) {
      if (this.state === "RUNNING") {
        this.state = to;
        this.log(`EXECUTION_${to}`, event);
      }
      return this.flush();
    }
    if (isFinal(this.state)) return this.flush();
    await this.start();
    if (Object.keys(extra).length > 0) this.log("execution_result", extra);
    this.state = await transition(this.managementApi(), this.id, to, reason);
    return this.flush();
  }

  private managementApi(): Management {
    return this.client.management("a managed envelope");
  }
}

function abortReason(signal: AbortSignal | undefined): string {
  const reason = signal?.reason;
  return `aborted: ${reason instanceof Error ? reason.message : String(reason ?? "signal")}`;
}
