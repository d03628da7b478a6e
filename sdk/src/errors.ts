import { Code, ConnectError } from "@connectrpc/connect";

/** Connect code names (`"InvalidArgument"`, `"Unavailable"`, ...). */
export type ErrorCode = keyof typeof Code;

/**
 * Codes that mean "Fulcrum could not be asked" rather than "Fulcrum answered":
 * the network failed (Unknown, with the fetch error as cause), the call timed out,
 * the service is down or overloaded (5xx, 429 → Unavailable) or failed inside.
 * Only these follow the client's failure mode.
 */
const TRANSPORT_FAILURES: ReadonlySet<Code> = new Set([
  Code.Unknown,
  Code.DeadlineExceeded,
  Code.Unavailable,
  Code.Internal,
  Code.Aborted,
  Code.DataLoss,
]);

/**
 * The one error type the SDK throws. `code` is the Connect code name.
 * A FulcrumError that reaches the caller is never swallowed by FAIL_OPEN: it is
 * a mistake to fix (bad input, a wrong, revoked or under-scoped API key, an
 * unknown policy, a wrong base URL) or the edge throttling requests — not an
 * outage. (A policy rate limit is not an error: it is a DENY with reason
 * RATE_LIMITED.)
 */
export class FulcrumError extends Error {
  override readonly name: string = "FulcrumError";
  readonly code: ErrorCode;
  /** True when Fulcrum could not be reached or failed (see `isTransportFailure`). */
  readonly transportFailure: boolean;
  /** True when the same request may succeed if retried unchanged. */
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.transportFailure = TRANSPORT_FAILURES.has(Code[code]);
    this.retryable = this.transportFailure || code === "ResourceExhausted";
  }

  /** Wraps anything a Connect call threw. */
  static from(reason: unknown): FulcrumError {
    if (reason instanceof FulcrumError) return reason;
    const error = ConnectError.from(reason);
    const code = Code[error.code] as ErrorCode;
    const cause = error.cause instanceof Error ? `: ${error.cause.message}` : "";
    const message = error.rawMessage || code;
    return new FulcrumError(
      code,
      cause && !message.includes(cause.slice(2)) ? message + cause : message,
      {
        cause: reason,
      },
    );
  }
}

/**
 * A decision (or reservation) whose usage was already settled: thrown without a call when
 * the same decision is settled twice in this process (`local: true`), and for the
 * server's AlreadyExists (settled before, by this or another process: nothing was counted
 * again). `code` is `"AlreadyExists"` either way.
 */
export class AlreadySettledError extends FulcrumError {
  override readonly name: string = "AlreadySettledError";
  /** The reservation (or idempotency key) settled before; `""` when there was none. */
  readonly reservationId: string;
  /** True when the SDK refused locally, without calling the server. */
  readonly local: boolean;

  constructor(
    message: string,
    options: { reservationId: string; local: boolean; cause?: unknown },
  ) {
    super("AlreadyExists", message, { cause: options.cause });
    this.reservationId = options.reservationId;
    this.local = options.local;
  }
}

/** True when the error means Fulcrum could not answer (so the failure mode applies). */
export function isTransportFailure(error: FulcrumError): boolean {
  return error.transportFailure;
}
