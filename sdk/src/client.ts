import { type CallOptions, type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { EventStoreService } from "../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import {
  type ApprovalOutcome,
  type ApprovalState,
  type ApprovedDecision,
  getApproval,
  type WaitForApprovalOptions,
  type WithApprovalOptions,
  waitForApproval,
  withApproval,
} from "./approvals.js";
import { type BudgetStatus, getBudgetStatus } from "./budget.js";
import type {
  CheckOptions,
  EvaluateOptions,
  FailureMode,
  FulcrumClientOptions,
  GuardContext,
} from "./client-options.js";
import { type ContextInit, checkApiKey, positive, toContext } from "./context.js";
import {
  type Decision,
  type DecisionData,
  fromCheckPolicy,
  fromEvaluatePolicies,
  fromEvaluatePolicy,
  syntheticDecision,
} from "./decision.js";
import { Envelope, type EnvelopeOptions } from "./envelope.js";
import { FulcrumError } from "./errors.js";
import type { FailedEvent } from "./event-queue.js";
import { Management, managementRequired } from "./management.js";
import {
  attachSettle,
  type RecordUsageInput,
  recordUsage,
  type SettleOptions,
  type SettleResult,
  usageRequest,
} from "./usage.js";

export type {
  CheckOptions,
  EvaluateOptions,
  FailureMode,
  FulcrumClientOptions,
  GuardContext,
  PhaseName,
} from "./client-options.js";

/**
 * Adds the API key to every request of a transport you build yourself (for other
 * Fulcrum services); FulcrumClient sends its `apiKey` on its own.
 */
export function apiKeyInterceptor(apiKey: string): Interceptor {
  return (next) => (request) => {
    request.header.set("x-api-key", apiKey);
    return next(request);
  };
}

export class FulcrumClient {
  readonly failureMode: FailureMode;
  readonly timeoutMs: number;
  /** @internal Headers of every call (the API key). */
  readonly headers: Readonly<Record<string, string>>;
  /** @internal */
  readonly policies: Client<typeof PolicyService>;
  /** @internal */
  readonly events: Client<typeof EventStoreService>;
  /** @internal The management API; undefined without managementUrl. */
  readonly managementApi: Management | undefined;
  /** @internal */
  readonly eventSettings: {
    retries: number;
    backoffMs: number;
    timeoutMs: number;
    onError?: (failure: FailedEvent) => void;
  };

  constructor(options: FulcrumClientOptions) {
    if ((options as { tenantId?: unknown } | undefined)?.tenantId !== undefined) {
      throw new FulcrumError(
        "InvalidArgument",
        "tenantId is no longer an option: the tenant comes from the API key; remove it",
      );
    }
    this.headers = { "x-api-key": checkApiKey(options?.apiKey) };
    const failureMode = options.failureMode ?? "FAIL_CLOSED";
    if (failureMode !== "FAIL_OPEN" && failureMode !== "FAIL_CLOSED") {
      throw new FulcrumError(
        "InvalidArgument",
        `failureMode must be FAIL_OPEN or FAIL_CLOSED, not ${String(failureMode)}`,
      );
    }
    this.failureMode = failureMode;
    this.timeoutMs = positive("timeoutMs", options.timeoutMs, 500);
    this.eventSettings = {
      retries: Math.max(0, Math.floor(options.eventRetries ?? 5)),
      backoffMs: positive("eventBackoffMs", options.eventBackoffMs, 200),
      timeoutMs: positive("eventTimeoutMs", options.eventTimeoutMs, 2000),
      ...(options.onEventError ? { onError: options.onEventError } : {}),
    };
    let transport = options.transport;
    if (!transport) {
      if (!options.baseUrl) throw new FulcrumError("InvalidArgument", "baseUrl is required");
      transport = createConnectTransport({
        baseUrl: options.baseUrl,
        useBinaryFormat: options.useBinaryFormat ?? true,
        // Bound late so a test (or a Worker) can replace globalThis.fetch; never the
        // unbound global itself (Workers throw "Illegal invocation" for that).
        fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
      });
    }
    this.policies = createClient(PolicyService, transport);
    this.events = createClient(EventStoreService, transport);
    let managementTransport = options.managementTransport;
    if (!managementTransport && options.managementUrl) {
      managementTransport = createConnectTransport({
        baseUrl: options.managementUrl,
        useBinaryFormat: options.useBinaryFormat ?? true,
        fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
      });
    }
    this.managementApi = managementTransport
      ? new Management(managementTransport, this.headers, {
          timeoutMs: positive("managementTimeoutMs", options.managementTimeoutMs, 5000),
          retries: Math.max(0, Math.floor(options.managementRetries ?? 3)),
          backoffMs: 200,
        })
      : undefined;
  }

  /** True when the client has the management API (`managementUrl`). */
  get hasManagement(): boolean {
    return this.managementApi !== undefined;
  }

  /** @internal The management API, or the error saying `what` needs managementUrl. */
  management(what: string): Management {
    if (!this.managementApi) throw managementRequired(what);
    return this.managementApi;
  }

  /**
   * The full decision for a context: all of the tenant's ACTIVE policies
   * (EvaluatePolicy without a policy id, as guard() does), or the named policies
   * (EvaluatePolicies, one result each). Follows the failure mode when Fulcrum
   * cannot answer; throws FulcrumError for anything else.
   */
  async evaluate(context: GuardContext, options: EvaluateOptions = {}): Promise<Decision> {
    const ctx = toContext(context);
    const ids = options.policyIds ?? [];
    const dryRun = options.dryRun ?? false;
    return this.decide(ctx, options, async (call, started) => {
      if (ids.length === 0) {
        const response = await this.policies.evaluatePolicy({ context: ctx, dryRun }, call);
        return fromEvaluatePolicy(response, Date.now() - started);
      }
      if (ids.length === 1) {
        const response = await this.policies.evaluatePolicy(
          { policyId: ids[0], context: ctx, dryRun },
          call,
        );
        return fromEvaluatePolicy(response, Date.now() - started);
      }
      const response = await this.policies.evaluatePolicies(
        { policyIds: ids, context: ctx, dryRun },
        call,
      );
      return fromEvaluatePolicies(response, Date.now() - started);
    });
  }

  /** CheckPolicy, the runbook's lean call: one policy or all ACTIVE ones, no dry run. */
  async check(context: GuardContext = {}, options: CheckOptions = {}): Promise<Decision> {
    const ctx = toContext(context);
    const policyId = options.policyId ?? "";
    return this.decide(ctx, options, async (call, started) => {
      const response = await this.policies.checkPolicy({ policyId, context: ctx }, call);
      return fromCheckPolicy(response, policyId, Date.now() - started);
    });
  }

  /** `(await evaluate(context, options)).allowed`: true for ALLOW and WARN. */
  async allowed(context: GuardContext, options: EvaluateOptions = {}): Promise<boolean> {
    return (await this.evaluate(context, options)).allowed;
  }

  /**
   * Opens a governed execution. With managementUrl it is created through
   * EnvelopeService on start() (or the first guard/log/run) and moved to RUNNING,
   * then COMPLETED/FAILED/TERMINATED by complete()/fail()/terminate()/run(); without
   * it, it emits EXECUTION_STARTED now and only publishes events (as in 0.3).
   */
  envelope(options: EnvelopeOptions): Envelope {
    return new Envelope(this, options);
  }

  /** `client.envelope(options).start()`: resolves once the envelope is RUNNING. */
  startEnvelope(options: EnvelopeOptions): Promise<Envelope> {
    return this.envelope(options).start();
  }

  /**
   * Records usage through CostService.RecordUsage (needs managementUrl): with a
   * decision's `budget.reservationId` it settles that reservation (prefer
   * `decision.settle(usage)`), without one it records usage no decision reserved.
   * Transient failures are retried with the same request; AlreadyExists (settled
   * before) throws AlreadySettledError.
   */
  async recordUsage(input: RecordUsageInput, options: SettleOptions = {}): Promise<SettleResult> {
    const management = this.management("recordUsage()");
    return recordUsage(management, usageRequest(input), options);
  }

  /**
   * Waits for a reviewer's verdict on `approvalId` (a REQUIRE_APPROVAL decision's
   * `approvalId`) by polling PolicyService.GetApproval on the management API. Resolves
   * APPROVED / REJECTED / EXPIRED / CANCELLED, or TIMEOUT after `timeoutMs`.
   */
  async waitForApproval(
    approvalId: string,
    options: WaitForApprovalOptions = {},
  ): Promise<ApprovalOutcome> {
    return waitForApproval(this.management("waitForApproval()"), approvalId, options);
  }

  /**
   * One reading of an approval (PolicyService.GetApproval on the management API), for
   * callers that poll on their own schedule. An id the API does not know resolves with
   * status NOT_FOUND (it is normal for a moment after the decision: see ApprovalState);
   * other failures throw FulcrumError.
   */
  async getApproval(
    approvalId: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<ApprovalState> {
    return getApproval(this.management("getApproval()"), approvalId, options);
  }

  /**
   * A budget's current period (CostService.GetBudgetStatus on the management API; check
   * keys may call it): state, usage, percentages, what is left of each limit (execution
   * time included). An unknown budget id throws FulcrumError("NotFound").
   */
  async getBudgetStatus(
    budgetId: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<BudgetStatus> {
    return getBudgetStatus(this.management("getBudgetStatus()"), budgetId, options);
  }

  /**
   * evaluate(); on REQUIRE_APPROVAL waits for the approval, and when approved asks
   * again with the same context (allowed once). See withApproval in approvals.ts.
   */
  async evaluateWithApproval(
    context: GuardContext,
    options: EvaluateOptions & WithApprovalOptions = {},
  ): Promise<ApprovedDecision> {
    const { approval, onApprovalRequired, ...evaluate } = options;
    this.management("evaluateWithApproval()");
    return withApproval(
      () => this.evaluate(context, evaluate),
      (id, wait) => this.waitForApproval(id, { ...wait, signal: wait?.signal ?? options.signal }),
      { ...(approval ? { approval } : {}), ...(onApprovalRequired ? { onApprovalRequired } : {}) },
    );
  }

  private async decide(
    ctx: ContextInit,
    options: { timeoutMs?: number; signal?: AbortSignal },
    call: (callOptions: CallOptions, started: number) => Promise<DecisionData>,
  ): Promise<Decision> {
    return this.withSettle(await this.answer(options, call), ctx);
  }

  /** Gives the decision its settle(): RecordUsage against its reservation, with its context. */
  private withSettle(data: DecisionData, ctx: ContextInit): Decision {
    const reservationId = data.budget?.reservationId ?? "";
    return attachSettle(
      data,
      (usage) =>
        usageRequest({
          ...(ctx.modelId ? { model: ctx.modelId } : {}),
          ...usage,
          reservationId,
          envelopeId: ctx.envelopeId ?? "",
          workflowId: ctx.workflowId ?? "",
          // No reservation: the decision id keeps a settle from being counted twice.
          ...(data.decisionId ? { idempotencyKey: `decision:${data.decisionId}` } : {}),
        }),
      (request, options) => recordUsage(this.management("decision.settle()"), request, options),
    );
  }

  private async answer(
    options: { timeoutMs?: number; signal?: AbortSignal },
    call: (callOptions: CallOptions, started: number) => Promise<DecisionData>,
  ): Promise<DecisionData> {
    const started = Date.now();
    const callOptions: CallOptions = {
      headers: this.headers,
      timeoutMs: positive("timeoutMs", options.timeoutMs, this.timeoutMs),
      ...(options.signal ? { signal: options.signal } : {}),
    };
    try {
      return await call(callOptions, started);
    } catch (reason) {
      const error = FulcrumError.from(reason);
      if (!error.transportFailure || options.signal?.aborted) throw error;
      return syntheticDecision(this.failureMode, error, Date.now() - started);
    }
  }
}
