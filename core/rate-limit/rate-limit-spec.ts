/**
 * One rate limit as the edge enforces it: what is counted (requests or tokens), per
 * what (tenant, API key, workflow, tool), over which window, with which algorithm,
 * and what happens when Redis cannot be reached. Specs come from the RATE_LIMIT rules
 * of a tenant's configuration (rate-limit-rules.ts); {@link validateRateLimitSpec}
 * checks one strictly, because a mistaken limit must fail loudly at configuration
 * time, never silently stop limiting.
 *
 * Web-standard only: runs in the Worker.
 */

export type RateLimitScope = "tenant" | "api_key" | "workflow" | "tool";
export type RateLimitUnit = "requests" | "tokens";
export type RateLimitAlgorithm = "sliding_window" | "token_bucket";
/** What a decision does when Redis is unreachable or too slow. */
export type RateLimitFailureMode = "FAIL_CLOSED" | "FAIL_OPEN";

export const RATE_LIMIT_SCOPES: readonly RateLimitScope[] = [
  "tenant",
  "api_key",
  "workflow",
  "tool",
];
export const RATE_LIMIT_UNITS: readonly RateLimitUnit[] = ["requests", "tokens"];
export const RATE_LIMIT_ALGORITHMS: readonly RateLimitAlgorithm[] = [
  "sliding_window",
  "token_bucket",
];
export const RATE_LIMIT_FAILURE_MODES: readonly RateLimitFailureMode[] = [
  "FAIL_CLOSED",
  "FAIL_OPEN",
];

/** `<n>s`, `<n>m` or `<n>h`, at most 24 hours (the issue's limits are `1m` and `1h`). */
export type RateLimitWindow = `${number}${"s" | "m" | "h"}`;

export interface RateLimitSpec {
  /** Unique within a tenant; part of the Redis key, so counters follow the id. */
  id: string;
  scope: RateLimitScope;
  unit: RateLimitUnit;
  /**
   * sliding_window: the most units per window. token_bucket: the bucket's capacity
   * (the largest burst).
   */
  limit: number;
  window: RateLimitWindow;
  /** Default sliding_window. */
  algorithm?: RateLimitAlgorithm;
  /** token_bucket only: units added back per window; default `limit`. */
  refill?: number;
  /** Default FAIL_CLOSED. */
  failure_mode?: RateLimitFailureMode;
  /** scope "tool" only: globs (glob.match dialect) naming the tools limited; default all. */
  tools?: string[];
  /** Counted only in these phases (a subject without a phase is counted); default every phase. */
  phases?: string[];
}

export interface RateLimitSpecProblem {
  /** e.g. `window`, or `[2].limit` for a list. */
  path: string;
  message: string;
}

const SPEC_KEYS = [
  "id",
  "scope",
  "unit",
  "limit",
  "window",
  "algorithm",
  "refill",
  "failure_mode",
  "tools",
  "phases",
];
const WINDOW = /^([1-9][0-9]{0,5})(s|m|h)$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000 } as const;
const MAX_WINDOW_MS = 24 * 3_600_000;
/** Counters are Redis integers and Lua doubles: keep them exact. */
const MAX_LIMIT = 2 ** 31 - 1;

/** The window's length in milliseconds, or null when it is not a valid window. */
export function windowMs(window: string): number | null {
  const m = WINDOW.exec(window);
  if (!m) return null;
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  return ms <= MAX_WINDOW_MS ? ms : null;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);

const show = (v: unknown): string => JSON.stringify(v) ?? String(v);

/** A positive integer a Redis counter holds exactly, or why not. */
export function countProblem(v: unknown): string | null {
  if (typeof v !== "number" || !Number.isInteger(v)) return `must be an integer, not ${show(v)}`;
  if (v < 1) return `must be >= 1, not ${v}`;
  if (v > MAX_LIMIT) return `must be <= ${MAX_LIMIT}, not ${v}`;
  return null;
}

/**
 * Every problem of `spec` as a {@link RateLimitSpec} (unknown keys included); empty
 * when it is valid. Never throws.
 */
export function validateRateLimitSpec(spec: unknown, at = ""): RateLimitSpecProblem[] {
  const problems: RateLimitSpecProblem[] = [];
  const add = (k: string, message: string) =>
    problems.push({ path: at === "" ? k : `${at}.${k}`, message });
  if (!isObject(spec)) {
    problems.push({ path: at, message: "a rate limit spec must be an object" });
    return problems;
  }
  for (const k of Object.keys(spec)) {
    if (!SPEC_KEYS.includes(k)) add(k, "unknown rate limit field");
  }
  const oneOf = (k: string, values: readonly string[], required: boolean) => {
    const v = spec[k];
    if (v === undefined) {
      if (required) add(k, "is required");
    } else if (typeof v !== "string" || !values.includes(v)) {
      add(k, `must be one of ${values.join(", ")}, not ${show(v)}`);
    }
  };
  if (typeof spec.id !== "string" || spec.id === "") {
    add("id", spec.id === undefined ? "is required" : "must be a non-empty string");
  }
  oneOf("scope", RATE_LIMIT_SCOPES, true);
  oneOf("unit", RATE_LIMIT_UNITS, true);
  oneOf("algorithm", RATE_LIMIT_ALGORITHMS, false);
  oneOf("failure_mode", RATE_LIMIT_FAILURE_MODES, false);
  if (spec.limit === undefined) add("limit", "is required");
  else {
    const problem = countProblem(spec.limit);
    if (problem) add("limit", problem);
  }
  if (spec.window === undefined) add("window", "is required");
  else if (typeof spec.window !== "string" || windowMs(spec.window) === null) {
    add("window", `must be <n>s, <n>m or <n>h of at most 24h, not ${show(spec.window)}`);
  }
  if (spec.refill !== undefined) {
    if (spec.algorithm !== "token_bucket") add("refill", "is for the token_bucket algorithm only");
    else {
      const problem = countProblem(spec.refill);
      if (problem) add("refill", problem);
    }
  }
  if (spec.tools !== undefined) {
    if (spec.scope !== "tool") add("tools", 'is for scope "tool" only');
    else if (
      !Array.isArray(spec.tools) ||
      spec.tools.length === 0 ||
      spec.tools.some((t) => typeof t !== "string" || t === "")
    ) {
      add("tools", "must be a non-empty list of non-empty strings");
    }
  }
  if (
    spec.phases !== undefined &&
    (!Array.isArray(spec.phases) || spec.phases.some((t) => typeof t !== "string" || t === ""))
  ) {
    add("phases", "must be a list of non-empty strings");
  }
  return problems;
}

/** Thrown by {@link assertValidRateLimitSpecs}. */
export class InvalidRateLimitSpecError extends Error {
  override readonly name = "InvalidRateLimitSpecError";

  constructor(readonly problems: readonly RateLimitSpecProblem[]) {
    super(
      `invalid rate limit specs: ${problems
        .slice(0, 5)
        .map((p) => `${p.path}: ${p.message}`)
        .join("; ")}`,
    );
  }
}

/** Asserts every spec is valid and the ids are unique. */
export function assertValidRateLimitSpecs(
  specs: readonly unknown[],
): asserts specs is RateLimitSpec[] {
  const problems = specs.flatMap((s, i) => validateRateLimitSpec(s, `[${i}]`));
  const seen = new Set<string>();
  specs.forEach((s, i) => {
    const id = isObject(s) ? s.id : undefined;
    if (typeof id !== "string") return;
    if (seen.has(id)) problems.push({ path: `[${i}].id`, message: `duplicate id ${show(id)}` });
    seen.add(id);
  });
  if (problems.length > 0) throw new InvalidRateLimitSpecError(problems);
}
