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
  /**
   * A Fulcrum API key (`fk_…`), sent as `x-api-key` on every call. Required: the
   * key names the tenant, so the SDK never sends a tenant id.
   */
  apiKey: string;
  /**
   * What a decision is when Fulcrum cannot answer (timeout, network error, 5xx):
   * FAIL_CLOSED (default) → a DENY marked `failedClosed`; FAIL_OPEN → an ALLOW
   * marked `failedOpen`. Mistakes (bad input, an unknown or refused key) always throw.
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
  /**
   * A ready transport; replaces baseUrl/fetch/useBinaryFormat (tests, custom protocols).
   * The API key is still sent, as a header of every call.
   */
  transport?: Transport;
}

/** What the policies look at. The tenant is the API key's. */
export interface GuardContext {
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
  /**
   * Tokens the step is expected to use, for tokens-per-minute rate limits (a call
   * without it is not counted against them). Rounded up to an integer.
   */
  estimatedTokens?: number;
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
      const response = await this.policies.checkPolicy({ policyId, context: ctx }, call);
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
    // Never a tenant id: the edge takes the tenant from the API key.
    return {
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
      estimatedTokens: tokens(context.estimatedTokens),
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

const API_KEY_PREFIX = "fk_";
// Loose on purpose (the edge checks the exact shape): the prefix, then base64url.
const API_KEY_SHAPE = /^fk_[A-Za-z0-9_-]+$/;

/** The key, trimmed; a clear error (never repeating the key) when it cannot be one. */
function checkApiKey(apiKey: unknown): string {
  if (apiKey === undefined || apiKey === null || apiKey === "") {
    throw new FulcrumError(
      "InvalidArgument",
      "apiKey is required: pass the Fulcrum API key (fk_…) that names your tenant",
    );
  }
  const key = typeof apiKey === "string" ? apiKey.trim() : "";
  if (!API_KEY_SHAPE.test(key)) {
    throw new FulcrumError(
      "InvalidArgument",
      `apiKey does not look like a Fulcrum API key: expected "${API_KEY_PREFIX}" followed by base64url characters, exactly as shown when the key was created`,
    );
  }
  return key;
}

const UINT32_MAX = 0xffff_ffff;

function tokens(value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isFinite(value) || value < 0 || Math.ceil(value) > UINT32_MAX) {
    throw new FulcrumError(
      "InvalidArgument",
      `estimatedTokens must be a number of tokens between 0 and ${UINT32_MAX}`,
    );
  }
  return Math.ceil(value);
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new FulcrumError("InvalidArgument", `${name} must be a positive number of ms`);
  }
  return value;
}
