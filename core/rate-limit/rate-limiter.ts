/**
 * Enforces {@link RateLimitSpec}s with @upstash/ratelimit over @upstash/redis (issue 4).
 *
 * - One decision is one Redis round trip when it is allowed: every counter's
 *   `limit()` is started in the same tick, and a Redis client created with
 *   `enableAutoPipelining: true` sends their EVALSHAs as one `/pipeline` request.
 *   A denied decision costs a second one: the counters it did consume are refunded
 *   (a negative `rate`), so a denied call uses no one's budget. The first call after
 *   Redis lost its scripts costs one more (NOSCRIPT → EVAL).
 * - The library's own `timeout` is off: it resolves a slow call as *allowed*
 *   (`reason: "timeout"`). A slow or unreachable Redis is a failure here instead,
 *   decided by each spec's failure mode (FAIL_CLOSED by default) and counted through
 *   `onFailure`.
 * - Request limits keep an ephemeral cache (per limiter, so per Worker isolate): an
 *   identifier over its limit is refused without Redis until its window resets.
 *   Token limits do not: a smaller call may still fit where a large one did not.
 *
 * Web-standard only: runs in the Worker.
 */

import { Ratelimit } from "@upstash/ratelimit";
import type { Redis } from "@upstash/redis";
import { withDeadline } from "../async/deadline.js";
import { type CheckAnswer, combineOutcome, type RateLimitOutcome } from "./rate-limit-outcome.js";
import { type RateLimitSpec, windowMs } from "./rate-limit-spec.js";
import {
  type RateLimitCheck,
  type RateLimitSubject,
  rateLimitChecks,
} from "./rate-limit-subject.js";

/** Where rate-limit counters live, beside the policy keys (core/distribution/policy-keys.ts). */
export const DEFAULT_RATE_LIMIT_PREFIX = "fulcrum:v1:rl";

export interface RateLimitersOptions {
  /** Create it with `enableAutoPipelining: true` (one round trip per decision) and `retry: false`. */
  redis: Redis;
  /** Key prefix; default {@link DEFAULT_RATE_LIMIT_PREFIX}. Tests use their own. */
  prefix?: string;
  /** A decision waits this long for Redis before its fail mode applies; default 1000 ms. */
  timeoutMs?: number;
  /** Called once per decision Redis failed for, with the mode that decided: the metric. */
  onFailure?: (mode: "FAIL_OPEN" | "FAIL_CLOSED") => void;
  /** Default Date.now; retry_after is computed against it. */
  now?: () => number;
}

/**
 * The limiters of one Redis and prefix: one Ratelimit per distinct (algorithm, limit,
 * window, refill, unit), kept so their ephemeral caches outlive a request. Create
 * one per isolate, not per request.
 */
export class RateLimiters {
  readonly prefix: string;
  readonly timeoutMs: number;
  private readonly limiters = new Map<string, Ratelimit>();

  constructor(readonly options: RateLimitersOptions) {
    this.prefix = options.prefix ?? DEFAULT_RATE_LIMIT_PREFIX;
    this.timeoutMs = options.timeoutMs ?? 1000;
  }

  /** The Ratelimit enforcing `spec` (identifiers carry the spec id, so specs may share one). */
  limiterFor(spec: RateLimitSpec): Ratelimit {
    const algorithm = spec.algorithm ?? "sliding_window";
    const window = windowMs(spec.window);
    if (window === null) throw new Error(`invalid rate limit window ${spec.window}`);
    const refill = spec.refill ?? spec.limit;
    const key = `${algorithm}|${spec.limit}|${window}|${refill}|${spec.unit}`;
    let limiter = this.limiters.get(key);
    if (!limiter) {
      limiter = new Ratelimit({
        redis: this.options.redis,
        limiter:
          algorithm === "token_bucket"
            ? Ratelimit.tokenBucket(refill, `${window} ms`, spec.limit)
            : Ratelimit.slidingWindow(spec.limit, `${window} ms`),
        // sw / tb: the two algorithms' keys have different Redis types.
        prefix: `${this.prefix}:${algorithm === "token_bucket" ? "tb" : "sw"}`,
        ephemeralCache: spec.unit === "requests" ? new Map() : false,
        timeout: 0,
        analytics: false,
      });
      this.limiters.set(key, limiter);
    }
    return limiter;
  }
}

const NO_ANSWER = "Redis did not answer";

const message = (error: unknown): string =>
  error instanceof Error ? error.message : String(error);

/**
 * Counts one call of `subject` against every applicable spec and decides. Never
 * throws: over a limit is `allowed: false` with the exceeded results; a Redis failure
 * is `failure` (and `onFailure`). Specs are assumed valid (assertValidRateLimitSpecs).
 *
 * @example
 * const limiters = new RateLimiters({ redis: new Redis({ url, token, enableAutoPipelining: true }) });
 * const outcome = await checkRateLimits(limiters, specs, { tenantId, apiKeyId, toolNames: [] });
 * if (!outcome.allowed) deny("RATE_LIMITED", outcome);
 */
export async function checkRateLimits(
  limiters: RateLimiters,
  specs: readonly RateLimitSpec[],
  subject: RateLimitSubject,
): Promise<RateLimitOutcome> {
  const now = limiters.options.now ?? Date.now;
  const checks = rateLimitChecks(specs, subject);
  if (checks.length === 0) return { allowed: true, results: [] };
  const limit = (check: RateLimitCheck, rate: number) =>
    limiters.limiterFor(check.spec).limit(check.identifier, { rate });
  // Started together: auto-pipelining sends them as one request.
  const answers = await Promise.all(
    checks.map(async (check): Promise<CheckAnswer & { consumed?: boolean }> => {
      try {
        const r = await withDeadline(limit(check, check.cost), limiters.timeoutMs, NO_ANSWER);
        // A cache block never reached Redis, and a refusal consumed nothing.
        return { ok: true, ...r, consumed: r.success };
      } catch (error) {
        return { ok: false, error: message(error) };
      }
    }),
  );
  const outcome = combineOutcome(checks, answers, now());
  if (outcome.failure) limiters.options.onFailure?.(outcome.failure.mode);
  if (!outcome.allowed && !outcome.failure) {
    // Refund what this denied call took, in one more round trip; best effort.
    const refunds = checks
      .filter((_, i) => answers[i]?.ok && answers[i].consumed)
      .map((check) =>
        withDeadline(limit(check, -check.cost), limiters.timeoutMs, NO_ANSWER).catch(
          () => undefined,
        ),
      );
    await Promise.all(refunds);
  }
  return outcome;
}
