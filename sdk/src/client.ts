import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  type CallOptions,
  type Client,
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { EventStoreService } from "../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import {
  type EvaluationContextSchema,
  Phase,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import {
  type Decision,
  fromCheckPolicy,
  fromEvaluatePolicies,
  fromEvaluatePolicy,
  syntheticDecision,
} from "./decision.js";
import { Envelope, type EnvelopeOptions, type FailedEvent } from "./envelope.js";
import { FulcrumError } from "./errors.js";

export type FailureMode = "FAIL_OPEN" | "FAIL_CLOSED";

/** Where in an execution a decision is asked for. */
export type PhaseName =
  | "PRE_EXECUTION"
  | "PRE_LLM_CALL"
  | "POST_LLM_CALL"
  | "PRE_TOOL_CALL"
  | "POST_TOOL_CALL"
  | "POST_EXECUTION";

export interface FulcrumClientOptions {
  /** The edge, e.g. `https://fulcrum.example.com` or `http://127.0.0.1:8787`. */
  baseUrl: string;
  /** Sent as `x-api-key` on every call. */
  apiKey?: string;
  /**
   * The tenant to evaluate for. Leave it unset when the API key names the tenant;
   * set it for an edge that does not authenticate keys yet (it reads the tenant
   * from the request) — the server rejects a tenant that differs from the key's.
   */
  tenantId?: string;
  /**
   * What a decision is when Fulcrum cannot answer (timeout, network error, 5xx):
   * FAIL_CLOSED (default) → a DENY marked `failedClosed`; FAIL_OPEN → an ALLOW
   * marked `failedOpen`. Mistakes (bad input, bad key, unknown tenant) always throw.
   */
  failureMode?: FailureMode;
  /** Deadline of one decision call, in ms. Default 500. */
  timeoutMs?: number;
  /** A fetch to use instead of the global one (tests, custom agents, Workers bindings). */
  fetch?: typeof globalThis.fetch;
  /** Binary Protobuf (default) or JSON on the wire. */
  useBinaryFormat?: boolean;
  /** Event publishing: retries after the first attempt (default 5). */
  eventRetries?: number;
  /** Event publishing: first backoff in ms, doubled per retry (default 200, capped at 5 s). */
  eventBackoffMs?: number;
  /** Event publishing: deadline of one publish attempt in ms (default 2000). */
  eventTimeoutMs?: number;
  /** Called when an event could not be published after all retries (or was refused). */
  onEventError?: (failure: FailedEvent) => void;
  /** A ready transport; replaces baseUrl/fetch/useBinaryFormat (tests, custom protocols). */
  transport?: Transport;
}

/** What the policies look at. Tenant defaults to the client's. */
export interface GuardContext {
  tenantId?: string;
  workflowId?: string;
  envelopeId?: string;
  userId?: string;
  userRoles?: string[];
  phase?: PhaseName;
  /** The action being guarded, e.g. `"send_email"`. */
  action?: string;
  /** Model id, e.g. `"gpt-4o-mini"`. */
  model?: string;
  /** Tool names the step will call. */
  tools?: string[];
  inputText?: string;
  outputText?: string;
  /** Estimated cost of the step in USD, for cost-control rules. */
  estimatedCost?: number;
  attributes?: Record<string, string>;
  /** When the step happens; the server's clock when unset. */
  timestamp?: Date;
}

export interface EvaluateOptions {
  /** Evaluate these policies (one result each); default: all of the tenant's ACTIVE policies. */
  policyIds?: string[];
  /** Record the real verdict but answer ALLOW (see `wouldDecide`). */
  dryRun?: boolean;
  /** Overrides the client's timeout for this call. */
  timeoutMs?: number;
  /** Cancels the call; a cancelled call throws (it is not a Fulcrum failure). */
  signal?: AbortSignal;
}

export interface CheckOptions {
  /** One policy; default: all of the tenant's ACTIVE policies. */
  policyId?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

type ContextInit = MessageInitShape<typeof EvaluationContextSchema>;

/** Adds the API key to every request. */
export function apiKeyInterceptor(apiKey: string): Interceptor {
  return (next) => (request) => {
    request.header.set("x-api-key", apiKey);
    return next(request);
  };
}

export class FulcrumClient {
  readonly failureMode: FailureMode;
  readonly timeoutMs: number;
  readonly tenantId: string;
  /** @internal */
  readonly policies: Client<typeof PolicyService>;
  /** @internal */
  readonly events: Client<typeof EventStoreService>;
  /** @internal */
  readonly eventSettings: {
    retries: number;
    backoffMs: number;
    timeoutMs: number;
    onError?: (failure: FailedEvent) => void;
  };

  constructor(options: FulcrumClientOptions) {
    const failureMode = options.failureMode ?? "FAIL_CLOSED";
    if (failureMode !== "FAIL_OPEN" && failureMode !== "FAIL_CLOSED") {
      throw new FulcrumError(
        "InvalidArgument",
        `failureMode must be FAIL_OPEN or FAIL_CLOSED, not ${String(failureMode)}`,
      );
    }
    this.failureMode = failureMode;
    this.timeoutMs = positive("timeoutMs", options.timeoutMs, 500);
    this.tenantId = options.tenantId ?? "";
    this.eventSettings = {
      retries: Math.max(0, Math.floor(options.eventRetries ?? 5)),
      backoffMs: positive("eventBackoffMs", options.eventBackoffMs, 200),
      timeoutMs: positive("eventTimeoutMs", options.eventTimeoutMs, 2000),
      ...(options.onEventError ? { onError: options.onEventError } : {}),
    };
    const interceptors = options.apiKey ? [apiKeyInterceptor(options.apiKey)] : [];
    let transport = options.transport;
    if (!transport) {
      if (!options.baseUrl) throw new FulcrumError("InvalidArgument", "baseUrl is required");
      transport = createConnectTransport({
        baseUrl: options.baseUrl,
        useBinaryFormat: options.useBinaryFormat ?? true,
        interceptors,
        // Bound late so a test (or a Worker) can replace globalThis.fetch.
        fetch: options.fetch ?? ((input, init) => globalThis.fetch(input, init)),
      });
    } else if (options.apiKey) {
      throw new FulcrumError(
        "InvalidArgument",
        "apiKey cannot be combined with a custom transport; add apiKeyInterceptor(apiKey) to it",
      );
    }
    this.policies = createClient(PolicyService, transport);
    this.events = createClient(EventStoreService, transport);
  }

  /**
   * The full decision for a context: all of the tenant's ACTIVE policies
   * (EvaluatePolicy without a policy id, as guard() does), or the named policies
   * (EvaluatePolicies, one result each). Follows the failure mode when Fulcrum
   * cannot answer; throws FulcrumError for anything else.
   */
  async evaluate(context: GuardContext, options: EvaluateOptions = {}): Promise<Decision> {
    const ctx = this.context(context);
    const ids = options.policyIds ?? [];
    const dryRun = options.dryRun ?? false;
    return this.decide(options, async (call, started) => {
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
    const ctx = this.context(context);
    const policyId = options.policyId ?? "";
    return this.decide(options, async (call, started) => {
      const response = await this.policies.checkPolicy(
        { tenantId: ctx.tenantId ?? "", policyId, context: ctx },
        call,
      );
      return fromCheckPolicy(response, policyId, Date.now() - started);
    });
  }

  /** `(await evaluate(context, options)).allowed`: true for ALLOW and WARN. */
  async allowed(context: GuardContext, options: EvaluateOptions = {}): Promise<boolean> {
    return (await this.evaluate(context, options)).allowed;
  }

  /**
   * Opens a governed execution: emits EXECUTION_STARTED now; guard() asks for
   * decisions in its context, log() records events, complete()/fail()/run() end it.
   */
  envelope(options: EnvelopeOptions): Envelope {
    return new Envelope(this, options);
  }

  private context(context: GuardContext): ContextInit {
    const phase = context.phase ? Phase[context.phase] : undefined;
    if (context.phase && phase === undefined) {
      throw new FulcrumError("InvalidArgument", `unknown phase ${context.phase}`);
    }
    return {
      tenantId: context.tenantId ?? this.tenantId,
      workflowId: context.workflowId ?? "",
      envelopeId: context.envelopeId ?? "",
      userId: context.userId ?? "",
      userRoles: context.userRoles ?? [],
      phase: phase ?? Phase.UNSPECIFIED,
      action: context.action ?? "",
      modelId: context.model ?? "",
      toolNames: context.tools ?? [],
      inputText: context.inputText ?? "",
      outputText: context.outputText ?? "",
      estimatedCostUsd: context.estimatedCost ?? 0,
      attributes: context.attributes ?? {},
      ...(context.timestamp ? { timestamp: timestampFromMs(context.timestamp.getTime()) } : {}),
    };
  }

  private async decide(
    options: { timeoutMs?: number; signal?: AbortSignal },
    call: (callOptions: CallOptions, started: number) => Promise<Decision>,
  ): Promise<Decision> {
    const started = Date.now();
    const callOptions: CallOptions = {
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

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new FulcrumError("InvalidArgument", `${name} must be a positive number of ms`);
  }
  return value;
}
