import { Code, ConnectError } from "@connectrpc/connect";
import { type ErrorKind, FulcrumError } from "./fulcrum-error.js";

/** The one table from domain error kinds to Connect codes. Codes are a closed set. */
export const connectCodeByKind: Readonly<Record<ErrorKind, Code>> = {
  Invalid: Code.InvalidArgument,
  NotFound: Code.NotFound,
  Conflict: Code.AlreadyExists,
  Unauthenticated: Code.Unauthenticated,
  PermissionDenied: Code.PermissionDenied,
  RateLimited: Code.ResourceExhausted,
  FailedPrecondition: Code.FailedPrecondition,
  Unavailable: Code.Unavailable,
  Unimplemented: Code.Unimplemented,
  Internal: Code.Internal,
};

/** What callers see for any error we did not anticipate: no details, no stack. */
export const INTERNAL_ERROR_MESSAGE =
  "internal error: the request could not be completed; it is safe to retry";

/**
 * Translate anything thrown by a handler into a ConnectError that is safe to
 * send. `log` receives the original for errors that were not meant for callers.
 */
export function toConnectError(error: unknown, log: (error: unknown) => void): ConnectError {
  if (error instanceof FulcrumError) {
    if (error.kind === "Internal") {
      log(error);
      return new ConnectError(INTERNAL_ERROR_MESSAGE, Code.Internal);
    }
    return new ConnectError(error.message, connectCodeByKind[error.kind]);
  }
  if (error instanceof ConnectError) {
    // Errors raised by the Connect runtime itself (malformed JSON, unsupported
    // encoding, oversized body) already carry the right code and a safe message.
    if (error.code === Code.Internal || error.code === Code.Unknown) {
      log(error);
      return new ConnectError(INTERNAL_ERROR_MESSAGE, Code.Internal);
    }
    return error;
  }
  log(error);
  return new ConnectError(INTERNAL_ERROR_MESSAGE, Code.Internal);
}
