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
  name?: unknown;
  /** DrizzleQueryError: the statement, with `$n` placeholders (never the values). */
  query?: unknown;
  /** PostgreSQL's error fields: names of schema objects, never values. */
  severity?: unknown;
  table?: unknown;
  column?: unknown;
  dataType?: unknown;
  schema?: unknown;
  routine?: unknown;
}

/**
 * What is kept of a failed database call, as the FulcrumError's cause (which the logger
 * serialises): the statement with its `$n` placeholders, the SQLSTATE, and the names of
 * the constraint, table and column — never a parameter value. The errors it stands for
 * are not kept: drizzle's DrizzleQueryError puts every parameter in its message
 * (`params: <key hash>,<email>,…`), and PostgreSQL's own messages quote values too
 * (`invalid input syntax for type uuid: "…"`, and `detail`: `Key (email)=(…)`), so only
 * the message of a failure PostgreSQL never answered (the network, the proxy) is kept.
 */
export class DatabaseFailure extends Error {
  override readonly name = "DatabaseFailure";
  /** SQLSTATE, or the network error code (ECONNREFUSED …). */
  readonly code: string | undefined;
  readonly constraint: string | undefined;

  constructor(message: string, code: string | undefined, constraint: string | undefined) {
    super(message);
    this.code = code;
    this.constraint = constraint;
  }
}

const text = (value: unknown): string | undefined =>
  typeof value === "string" && value !== "" ? value : undefined;

/** A DatabaseFailure describing `error` without any parameter value (see DatabaseFailure). */
export function redactDatabaseError(error: unknown): DatabaseFailure {
  const chain = driverErrors(error);
  const query = chain.map((e) => text(e.query)).find((q) => q !== undefined);
  const driver = chain.find((e) => text(e.code) !== undefined) ?? chain[chain.length - 1];
  const code = text(driver?.code);
  const constraint = text(driver?.constraint);
  const fromPostgres = driver !== undefined && text(driver.severity) !== undefined;
  const parts = [`database error${code ? ` ${code}` : ""}`];
  const names: [string, unknown][] = [
    ["constraint", constraint],
    ["schema", driver?.schema],
    ["table", driver?.table],
    ["column", driver?.column],
    ["routine", driver?.routine],
  ];
  for (const [label, value] of names) {
    const name = text(value);
    if (name) parts.push(`${label} ${name}`);
  }
  // A failure PostgreSQL never answered (no severity) carries no query values: its message
  // (a refused or dropped connection) is what there is to debug, so it is kept.
  const message = text(driver?.message);
  if (message && !fromPostgres && isNetworkFailure(driver)) parts.push(`(${message})`);
  if (query) parts.push(`query: ${query}`);
  return new DatabaseFailure(parts.join("; "), code, constraint);
}

/**
 * Whether `e` is the driver's report of a failed connection. A DrizzleQueryError (it has
 * `query`) never is: its message is the statement and its parameters, which could say
 * anything ("websocket", "connection error" …).
 */
function isNetworkFailure(e: DriverError | undefined): boolean {
  if (!e || e.query !== undefined) return false;
  const code = text(e.code);
  const message = text(e.message);
  return (
    (code !== undefined && NETWORK_CODES.has(code)) ||
    (message !== undefined && NETWORK_MESSAGE.test(message))
  );
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
 * shown). The cause is a DatabaseFailure, never the driver's error itself: that one
 * carries the query's parameters (key hashes, emails) in its message, and the cause is
 * logged.
 *
 * @example
 * catch (error) { throw toDatabaseError(error, { unique: { policies_tenant_id_name_key: "a policy named x already exists" } }) }
 */
export function toDatabaseError(error: unknown, messages: ConstraintMessages = {}): FulcrumError {
  if (error instanceof FulcrumError) return error;
  const cause = redactDatabaseError(error);
  for (const e of driverErrors(error)) {
    const code = typeof e.code === "string" ? e.code : undefined;
    const constraint = typeof e.constraint === "string" ? e.constraint : undefined;
    if (code === "23505") {
      const message =
        (constraint && messages.unique?.[constraint]) ?? "the resource already exists";
      return new FulcrumError("Conflict", message, { cause });
    }
    if (code === "23503") {
      const message = constraint && messages.foreignKey?.[constraint];
      if (message) return new FulcrumError("NotFound", message, { cause });
      return new FulcrumError("Internal", "foreign key violation", { cause });
    }
    if (code === "22P02") {
      return new FulcrumError("Invalid", "an id in the request is not a valid UUID", { cause });
    }
    if (code && (TRANSIENT_STATES.has(code) || TRANSIENT_CLASSES.includes(code.slice(0, 2)))) {
      return unavailable(cause);
    }
    if (isNetworkFailure(e)) return unavailable(cause);
    // The WebSocket's own ErrorEvent (no message, type "error") when the proxy is gone.
    if (e.type === "error" && !code) return unavailable(cause);
  }
  return new FulcrumError("Internal", "database error", { cause });
}

function unavailable(cause: unknown): FulcrumError {
  return new FulcrumError(
    "Unavailable",
    "the database is unavailable; nothing was changed, retry shortly",
    { cause, retry: true },
  );
}
