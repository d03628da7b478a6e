/**
 * The one domain error type. Domain code throws `FulcrumError` with a kind; the
 * transport edges (Connect interceptor, HTTP handlers) translate the kind to a
 * wire code through `connect-codes.ts`. Expected outcomes such as a DENY or a
 * rate-limit hit are values, never errors.
 */
export type ErrorKind =
  | "Invalid"
  | "NotFound"
  | "Conflict"
  | "Unauthenticated"
  | "PermissionDenied"
  | "RateLimited"
  | "FailedPrecondition"
  | "Unavailable"
  | "Unimplemented"
  | "Internal";

export interface FulcrumErrorOptions {
  /** The request field the error is about, as a dotted path (`context.tenant_id`). */
  field?: string;
  /** Whether the caller may retry the same request unchanged. */
  retry?: boolean;
  /** The underlying error; logged, never sent to the caller. */
  cause?: unknown;
}

export class FulcrumError extends Error {
  override readonly name = "FulcrumError";
  readonly kind: ErrorKind;
  readonly field: string | undefined;
  readonly retry: boolean;

  constructor(kind: ErrorKind, message: string, options: FulcrumErrorOptions = {}) {
    super(message, { cause: options.cause });
    this.kind = kind;
    this.field = options.field;
    this.retry = options.retry ?? (kind === "Unavailable" || kind === "RateLimited");
  }
}

/**
 * @example
 * throw invalid("policy_ids[2]", "policy id is listed twice");
 */
export function invalid(field: string, message: string): FulcrumError {
  return new FulcrumError("Invalid", `${field}: ${message}`, { field });
}

export function notFound(message: string): FulcrumError {
  return new FulcrumError("NotFound", message);
}
