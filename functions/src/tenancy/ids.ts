import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { isUuid } from "../../../core/ids/uuid.js";

/**
 * An id from a request, checked and lower-cased before it reaches SQL. protovalidate
 * already checks most id fields; this is the handler's own guarantee (and covers ids
 * nested in messages whose rule is IGNORE_IF_ZERO_VALUE), so a malformed id is
 * InvalidArgument naming the field instead of a database cast error.
 */
export function requireUuid(field: string, value: string): string {
  if (!isUuid(value)) {
    throw new FulcrumError(
      "Invalid",
      `${field} must be a UUID, got ${JSON.stringify(value.slice(0, 64))}`,
      {
        field,
      },
    );
  }
  return value.toLowerCase();
}

/** Like requireUuid, but "" (not set) gives undefined. */
export function optionalUuid(field: string, value: string): string | undefined {
  return value === "" ? undefined : requireUuid(field, value);
}
