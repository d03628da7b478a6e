/**
 * What a rate-limit check decides, as a value: over the limit and Redis failures are
 * outcomes, never exceptions, so the edge always has something to put in a decision
 * (DENY with reason RATE_LIMITED, or the tenant's fail mode) and a metric to count.
 */
import type { RateLimitFailureMode, RateLimitScope } from "./rate-limit-spec.js";
import type { RateLimitCheck } from "./rate-limit-subject.js";

export interface RateLimitResult {
  spec_id: string;
  scope: RateLimitScope;
  identifier: string;
  /** The spec's limit (a token bucket's capacity). */
  limit: number;
  /** Units left after this call (0 when exceeded). */
  remaining: number;
  /** Unix time in ms when the window resets (a bucket refills); 0 when unknown (failed). */
  reset_ms: number;
  /** Set when exceeded: how long until the limit may admit a call again. */
  retry_after_ms?: number;
  /** This call would go over the limit: it was not counted. */
  exceeded: boolean;
  /** Redis could not answer for this counter; its spec's failure mode applied. */
  failed?: true;
}

export interface RateLimitOutcome {
  allowed: boolean;
  results: RateLimitResult[];
  /** Set when Redis failed for any counter: which mode decided, and why. */
  failure?: { mode: RateLimitFailureMode; error: string };
}

/** What Redis (or the ephemeral cache) said for one check, or why it could not. */
export type CheckAnswer =
  | { ok: true; success: boolean; limit: number; remaining: number; reset: number }
  | { ok: false; error: string };

/**
 * Joins the answers of `checks` (same order) into one outcome: allowed when no counter
 * is exceeded and no failed counter is FAIL_CLOSED. One failed FAIL_CLOSED spec
 * denies; failures of FAIL_OPEN specs only are reported as FAIL_OPEN.
 */
export function combineOutcome(
  checks: readonly RateLimitCheck[],
  answers: readonly CheckAnswer[],
  now: number,
): RateLimitOutcome {
  const results: RateLimitResult[] = [];
  let exceeded = false;
  let failure: RateLimitOutcome["failure"];
  checks.forEach((check, i) => {
    const answer = answers[i] ?? { ok: false, error: "no answer" };
    const base = { spec_id: check.spec.id, scope: check.spec.scope, identifier: check.identifier };
    if (!answer.ok) {
      const mode = check.spec.failure_mode ?? "FAIL_CLOSED";
      if (!failure || mode === "FAIL_CLOSED") failure = { mode, error: answer.error };
      results.push({
        ...base,
        limit: check.spec.limit,
        remaining: 0,
        reset_ms: 0,
        exceeded: false,
        failed: true,
      });
      return;
    }
    const over = !answer.success;
    exceeded ||= over;
    results.push({
      ...base,
      limit: check.spec.limit,
      remaining: over ? 0 : Math.max(0, answer.remaining),
      reset_ms: answer.reset,
      ...(over ? { retry_after_ms: Math.max(0, answer.reset - now) } : {}),
      exceeded: over,
    });
  });
  const allowed = !exceeded && failure?.mode !== "FAIL_CLOSED";
  return failure ? { allowed, results, failure } : { allowed, results };
}
