/**
 * What a failed write means for the messages in it. Two kinds, and they are handled
 * differently on purpose:
 * - a *rejection*: the store answered and refused the data (ClickHouse could not parse a
 *   row, PostgreSQL raised a data or constraint error). Retrying cannot help the
 *   message at fault, so it counts towards MAX_DELIVER and is dead-lettered there;
 * - anything else (connection refused, timeout, the server overloaded or restarting) is
 *   the store's problem, not the message's: the batch is retried with backoff for as long
 *   as it takes, so an outage longer than the backoff series loses nothing.
 */
import { ClickHouseError } from "@clickhouse/client";

/** ClickHouse error codes that mean "this data is wrong", not "try again later". */
const CLICKHOUSE_DATA_CODES = new Set([
  "6", // CANNOT_PARSE_TEXT
  "26", // CANNOT_PARSE_QUOTED_STRING
  "27", // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  "33", // CANNOT_READ_ALL_DATA
  "38", // CANNOT_PARSE_DATE
  "41", // CANNOT_PARSE_DATETIME
  "53", // TYPE_MISMATCH
  "69", // ARGUMENT_OUT_OF_BOUND
  "70", // CANNOT_CONVERT_TYPE
  "72", // CANNOT_PARSE_NUMBER
  "117", // INCORRECT_DATA
  "131", // TOO_LARGE_STRING_SIZE
  "321", // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
  "376", // CANNOT_PARSE_UUID
]);

export function isClickHouseRejection(error: unknown): boolean {
  return error instanceof ClickHouseError && CLICKHOUSE_DATA_CODES.has(error.code);
}

/** The SQLSTATE of a PostgreSQL error, through drizzle's wrapper and cause chain. */
export function sqlState(error: unknown): string | undefined {
  let e = error as { code?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; e && depth < 5; depth++, e = e.cause as never) {
    if (typeof e.code === "string" && /^[0-9A-Z]{5}$/.test(e.code)) return e.code;
  }
  return undefined;
}

/**
 * PostgreSQL refused the row itself: class 22 (data exception, e.g. a value too long)
 * or 23 (integrity: the tenant does not exist, a check failed).
 */
export function isPostgresRejection(error: unknown): boolean {
  const state = sqlState(error);
  return state !== undefined && (state.startsWith("22") || state.startsWith("23"));
}

/** Nak delay after `deliveries` failed deliveries: 1 s, 2 s, 4 s, … capped at 60 s. */
export function redeliveryDelayMs(deliveries: number): number {
  const n = Math.max(1, Math.min(deliveries, 16));
  return Math.min(60_000, 1000 * 2 ** (n - 1));
}

/**
 * A short description of an error safe for logs and dead-letter headers: the name and
 * code, and the message only when it cannot contain row values (drizzle's messages
 * carry every statement parameter).
 */
export function describeFailure(error: unknown): string {
  if (error instanceof ClickHouseError) {
    return `ClickHouse ${error.code}${error.type ? ` ${error.type}` : ""}`;
  }
  const state = sqlState(error);
  if (state) return `PostgreSQL SQLSTATE ${state}`;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return `${error.name}${typeof code === "string" ? ` ${code}` : ""}: ${error.message.slice(0, 200)}`;
  }
  return String(error).slice(0, 200);
}
