import type { Transport } from "@connectrpc/connect";
import type { FailedEvent } from "./event-queue.js";

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
  /**
   * The management API (the Fulcrum functions service), e.g.
   * `https://api.fulcrum.example.com`. Needed by `settle()`/`recordUsage()`,
   * `waitForApproval()` and server-side envelopes; without it those throw
   * FailedPrecondition and envelopes only publish events (as in 0.3).
   */
  managementUrl?: string;
  /** A ready transport for the management API; replaces managementUrl (tests). */
  managementTransport?: Transport;
  /** Deadline of one management call attempt in ms. Default 5000. */
  managementTimeoutMs?: number;
  /**
   * Retries of a management call after a transient failure (Unavailable,
   * DeadlineExceeded, network errors), with the same request. Default 3.
   */
  managementRetries?: number;
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
  /**
   * The call's arguments (e.g. a tool call's), sent as JSON text (a string is sent as
   * is). An approval is bound to action, tools, arguments and input: an approved retry
   * must send the same ones.
   */
  arguments?: unknown;
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
