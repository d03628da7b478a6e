/**
 * Environment parsing for the container workers: each worker's config.ts reads its
 * variables through these, so a malformed one fails the same way everywhere (a
 * {@link BadEnvironmentError} naming the variable, which main.ts turns into exit 78).
 */
import {
  type EventStreamSettings,
  parseEventStreamSettings,
} from "../../core/audit/event-stream.js";

export class BadEnvironmentError extends Error {
  override name = "BadEnvironmentError";
}

export type Env = Record<string, string | undefined>;

/** The trimmed value, or undefined when unset or blank. */
export function optional(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/** A URL with one of `protocols`; `fallback` undefined makes the variable required. */
export function url(
  env: Env,
  name: string,
  fallback: string | undefined,
  protocols: string[],
): string {
  const value = optional(env, name) ?? fallback;
  if (value === undefined) throw new BadEnvironmentError(`${name} is required`);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new BadEnvironmentError(`${name} is not a URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new BadEnvironmentError(`${name} must be a ${protocols.join(" or ")}// URL`);
  }
  return value;
}

/** A decimal integer from min to max (digits only: no sign, exponent or fraction). */
export function integer(
  env: Env,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (!/^[0-9]+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new BadEnvironmentError(`${name} must be an integer from ${min} to ${max}`);
  }
  return n;
}

/** true / 1 or false / 0 (any case); unset is false. */
export function boolean(env: Env, name: string): boolean {
  const raw = optional(env, name)?.toLowerCase();
  if (raw === undefined || raw === "false" || raw === "0") return false;
  if (raw === "true" || raw === "1") return true;
  throw new BadEnvironmentError(`${name} must be true or false`);
}

/** The EVENTS_STREAM_* settings, their errors reported like every other variable's. */
export function eventStreamSettings(env: Env): EventStreamSettings {
  try {
    return parseEventStreamSettings(env);
  } catch (error) {
    throw new BadEnvironmentError((error as Error).message);
  }
}
