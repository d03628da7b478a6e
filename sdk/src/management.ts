import { type CallOptions, type Client, createClient, type Transport } from "@connectrpc/connect";
import { CostService } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { EnvelopeService } from "../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { FulcrumError } from "./errors.js";

/**
 * The management API (the functions service, `managementUrl`): settling usage, envelope
 * lifecycle and approvals live there, not on the edge. Every call here is idempotent on
 * the server (a reservation id, an idempotency key, an execution id, a read), so a
 * transient failure is retried with the same request.
 */
export interface ManagementSettings {
  /** Deadline of one attempt in ms. */
  timeoutMs: number;
  /** Retries after the first attempt, for retryable failures only. */
  retries: number;
  /** First backoff in ms, doubled per retry (capped at 2 s). */
  backoffMs: number;
}

export interface ManagementCallOptions {
  signal?: AbortSignal | undefined;
  timeoutMs?: number | undefined;
}

export class Management {
  readonly costs: Client<typeof CostService>;
  readonly envelopes: Client<typeof EnvelopeService>;
  readonly policies: Client<typeof PolicyService>;

  constructor(
    transport: Transport,
    private readonly headers: Readonly<Record<string, string>>,
    readonly settings: ManagementSettings,
  ) {
    this.costs = createClient(CostService, transport);
    this.envelopes = createClient(EnvelopeService, transport);
    this.policies = createClient(PolicyService, transport);
  }

  /**
   * Calls `fn` until it succeeds, fails with an error that is not retryable, or the
   * retries are spent; `attempt` starts at 1 (a caller can tell a retry's AlreadyExists
   * — its own earlier attempt landed — from a first attempt's).
   */
  async call<T>(
    fn: (options: CallOptions, attempt: number) => Promise<T>,
    options: ManagementCallOptions = {},
  ): Promise<T> {
    const { retries, backoffMs } = this.settings;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(this.callOptions(options), attempt);
      } catch (reason) {
        const error = FulcrumError.from(reason);
        if (!error.retryable || attempt > retries || options.signal?.aborted) throw error;
        await sleep(Math.min(backoffMs * 2 ** (attempt - 1), 2000), options.signal);
      }
    }
  }

  /** One attempt's options: the API key, a deadline, the caller's signal. */
  callOptions(options: ManagementCallOptions = {}): CallOptions {
    return {
      headers: this.headers,
      timeoutMs: options.timeoutMs ?? this.settings.timeoutMs,
      ...(options.signal ? { signal: options.signal } : {}),
    };
  }
}

/** The error for a management call on a client without `managementUrl`. */
export function managementRequired(what: string): FulcrumError {
  return new FulcrumError(
    "FailedPrecondition",
    `${what} needs the management API: pass managementUrl (the Fulcrum functions URL, ` +
      "e.g. https://api.fulcrum.example.com) to new FulcrumClient({ … })",
  );
}

/** Waits `ms`; rejects with FulcrumError("Canceled") when `signal` aborts first. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(canceled(signal));
    const onAbort = () => {
      clearTimeout(timer);
      reject(canceled(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export function canceled(signal: AbortSignal | undefined): FulcrumError {
  const reason = signal?.reason;
  return new FulcrumError(
    "Canceled",
    `cancelled by the caller's signal${reason instanceof Error ? `: ${reason.message}` : ""}`,
    { cause: reason },
  );
}
