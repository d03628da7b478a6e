/**
 * The one UUID shape check (any version, either case): tenant ids before they reach
 * `set_config`, ids from requests before they reach SQL, ids inside page tokens.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether `value` is a UUID in its canonical 8-4-4-4-12 hex form (upper or lower case). */
export function isUuid(value: string): boolean {
  return UUID.test(value);
}
