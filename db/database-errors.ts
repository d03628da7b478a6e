import { FulcrumError } from "../core/errors/fulcrum-error.js";

/**
 * What a failed database call means for the caller, decided in one place for every
 * function that touches PostgreSQL. Domain code names only the constraints whose
 * violation it expects (a duplicate name, an unknown referenced id), with the message
 * a person can act on; anything else keeps a generic, safe message.
 */
export interface ConstraintMessages {
  /** unique constraint or index name → AlreadyExists message */
  unique?: Record<string, string>;
  /** foreign key name → NotFound message (the referenced row does not exist) */
  foreignKey?: Record<string, string>;
}

/** SQLSTATE classes and codes after which the same request may succeed later. */
const TRANSIENT_STATES = new Set(["40001", "40P01", "53300", "55P03", "57P01", "57P02", "57P03"]);
const TRANSIENT_CLASSES = ["08", "53", "58"];
/** Errors the driver raises before PostgreSQL answers: the network or the proxy is down. */
const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTFOUND",
  "EPIPE",
  "EAI_AGAIN",
]);
const NETWORK_MESSAGE =
  /connection terminated|timeout exceeded when trying to connect|websocket|socket hang up|connect econnrefused|client has encountered a connection error|connection error/i;

interface DriverError {
  code?: unknown;
  constraint?: unknown;
  message?: unknown;
  cause?: unknown;
  type?: unknown;
}

/** The innermost driver error: drizzle wraps the Neon driver's in DrizzleQueryError.cause. */
function driverErrors(error: unknown): DriverError[] {
  const chain: DriverError[] = [];
  let e = error as DriverError | undefined;
  while (e && typeof e === "object" && chain.length < 8) {
    chain.push(e);
    e = e.cause as DriverError | undefined;
  }
  return chain;
}

/**
 * Translates an error thrown while talking to PostgreSQL into a FulcrumError. Errors
 * that already are FulcrumErrors (domain decisions made inside a transaction) pass
 * through unchanged. Unknown failures become Internal (logged by the interceptor, never
 * shown).
 *
 * @example
 * catch (error) { throw toDatabaseError(error, { unique: { policies_tenant_id_name_key: "a policy named x already exists" } }) }
 */
export function toDatabaseError(error: unknown, messages: ConstraintMessages = {}): FulcrumError {
  if (error instanceof FulcrumError) return error;
  for (const e of driverErrors(error)) {
    const code = typeof e.code === "string" ? e.code : undefined;
    const constraint = typeof e.constraint === "string" ? e.constraint : undefined;
    if (code === "23505") {
      const message =
        (constraint && messages.unique?.[constraint]) ?? "the resource already exists";
      return new FulcrumError("Conflict", message, { cause: error });
    }
    if (code === "23503") {
      const message = constraint && messages.foreignKey?.[constraint];
      if (message) return new FulcrumError("NotFound", message, { cause: error });
      return new FulcrumError("Internal", "foreign key violation", { cause: error });
    }
    if (code === "22P02") {
      return new FulcrumError("Invalid", "an id in the request is not a valid UUID", {
        cause: error,
      });
    }
    if (code && (TRANSIENT_STATES.has(code) || TRANSIENT_CLASSES.includes(code.slice(0, 2)))) {
      return unavailable(error);
    }
    if (code && NETWORK_CODES.has(code)) return unavailable(error);
    if (typeof e.message === "string" && NETWORK_MESSAGE.test(e.message)) return unavailable(error);
    // The WebSocket's own ErrorEvent (no message, type "error") when the proxy is gone.
    if (e.type === "error" && !code) return unavailable(error);
  }
  return new FulcrumError("Internal", "database error", { cause: error });
}

function unavailable(cause: unknown): FulcrumError {
  return new FulcrumError(
    "Unavailable",
    "the database is unavailable; nothing was changed, retry shortly",
    { cause, retry: true },
  );
}
