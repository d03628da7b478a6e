/**
 * Strict field readers for the JSON records functions write to Redis and the edge reads
 * back (BudgetSet, EnvelopeRecord). A record that does not match is a bug or a corrupted
 * store, never the caller's fault: it is an Internal error naming the field, and the edge
 * treats it like Redis failing (fail closed).
 */
import { FulcrumError } from "../errors/fulcrum-error.js";
import { isCount } from "./limits.js";

export class RecordReader {
  constructor(
    private readonly what: string,
    private readonly path = "",
  ) {}

  fail(field: string, message: string): never {
    const at = this.path ? `${this.path}.${field}` : field;
    throw new FulcrumError("Internal", `${this.what} is invalid: ${at} ${message}`, {
      field: at,
    });
  }

  at(index: string | number): RecordReader {
    const part = typeof index === "number" ? `[${index}]` : index;
    const path = this.path
      ? typeof index === "number"
        ? `${this.path}${part}`
        : `${this.path}.${part}`
      : part;
    return new RecordReader(this.what, path);
  }

  object(value: unknown, field: string): Record<string, unknown> {
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      return this.fail(field, "must be an object");
    }
    return value as Record<string, unknown>;
  }

  string(value: unknown, field: string): string {
    if (typeof value !== "string" || value.length === 0)
      return this.fail(field, "must be a non-empty string");
    return value;
  }

  /** Any string, empty included. */
  text(value: unknown, field: string): string {
    if (typeof value !== "string") return this.fail(field, "must be a string");
    return value;
  }

  optionalString(value: unknown, field: string): string | undefined {
    return value === undefined || value === null ? undefined : this.string(value, field);
  }

  strings(value: unknown, field: string): string[] {
    if (!Array.isArray(value)) return this.fail(field, "must be an array of strings");
    return value.map((item, i) => this.string(item, `${field}[${i}]`));
  }

  count(value: unknown, field: string): number {
    if (!isCount(value)) return this.fail(field, "must be a non-negative integer");
    return value;
  }

  optionalCount(value: unknown, field: string): number | undefined {
    return value === undefined || value === null ? undefined : this.count(value, field);
  }

  boolean(value: unknown, field: string): boolean {
    if (typeof value !== "boolean") return this.fail(field, "must be true or false");
    return value;
  }

  oneOf<T extends string>(value: unknown, field: string, allowed: readonly T[]): T {
    if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
      return this.fail(field, `must be one of ${allowed.join(", ")}`);
    }
    return value as T;
  }
}

/** A record as stored: @upstash/redis hands back parsed JSON, other clients the string. */
export function decodeStored(raw: unknown, reader: RecordReader): unknown {
  if (typeof raw !== "string") return raw;
  try {
    return JSON.parse(raw);
  } catch {
    return reader.fail("(record)", "is not JSON");
  }
}
