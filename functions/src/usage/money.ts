/**
 * PostgreSQL numeric(18,6) USD ⇄ integer micro-USD, exactly: the ledger counts integers,
 * and a float round trip (0.1 + 0.2) would make Redis and PostgreSQL disagree by a
 * micro-USD now and then — enough for a reconciliation to look like a change.
 */

/** "12.345600" (or "12", "-0") → 12345600. */
export function numericToMicros(value: string | number | null | undefined): number {
  if (value === null || value === undefined) return 0;
  const text = String(value).trim();
  const match = /^(\d+)(?:\.(\d{0,6})\d*)?$/.exec(text);
  if (!match) throw new RangeError(`not a non-negative numeric: ${text.slice(0, 40)}`);
  const whole = Number(match[1]);
  const fraction = Number((match[2] ?? "").padEnd(6, "0"));
  return whole * 1_000_000 + fraction;
}

/** 12345600 → "12.345600" (for a numeric(18,6) parameter). */
export function microsToNumeric(micros: number): string {
  if (!Number.isSafeInteger(micros) || micros < 0) {
    throw new RangeError(`not a non-negative whole number of micro-USD: ${micros}`);
  }
  const whole = Math.floor(micros / 1_000_000);
  return `${whole}.${String(micros % 1_000_000).padStart(6, "0")}`;
}
