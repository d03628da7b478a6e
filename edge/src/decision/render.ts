import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { RateLimitResult } from "../../../core/rate-limit/rate-limit-outcome.js";
import type { RateLimitSpec } from "../../../core/rate-limit/rate-limit-spec.js";
import {
  type AppliedFailureMode,
  AppliedFailureModeSchema,
  DecisionReason,
  FailureMode,
  type RateLimitState,
  RateLimitStateSchema,
} from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { AppliedFailure, EdgeDecision } from "./decide.js";

/** The decision's machine-readable extras, as every evaluation response carries them. */
export function decisionExtras(decision: EdgeDecision): {
  reason: DecisionReason;
  rateLimits: RateLimitState[];
  failureMode: AppliedFailureMode | undefined;
} {
  return {
    reason: DecisionReason[decision.reason],
    rateLimits: decision.rateLimits.map((r) => toRateLimitState(r, decision.rateLimitSpecs)),
    failureMode: decision.failure ? toAppliedFailureMode(decision.failure) : undefined,
  };
}

const clampU32 = (n: number) => Math.max(0, Math.min(0xffffffff, Math.round(n)));

/** The counter's subject within the tenant, from its identifier (core/rate-limit/rate-limit-subject.ts). */
function subjectOf(identifier: string): string {
  const match = /^t:[^:]*:(?:k|w|tool):([^:]*):s:/.exec(identifier);
  return match?.[1] ? decodeURIComponent(match[1]) : "";
}

export function toRateLimitState(
  result: RateLimitResult,
  specs: readonly RateLimitSpec[],
): RateLimitState {
  const spec = specs.find((s) => s.id === result.spec_id);
  return create(RateLimitStateSchema, {
    limitId: result.spec_id,
    scope: result.scope,
    subject: subjectOf(result.identifier),
    unit: spec?.unit ?? "requests",
    limit: clampU32(result.limit),
    remaining: clampU32(result.remaining),
    resetAt: result.reset_ms > 0 ? timestampFromMs(result.reset_ms) : undefined,
    retryAfterMs: clampU32(result.retry_after_ms ?? 0),
    exceeded: result.exceeded,
    failed: result.failed === true,
  });
}

export function toAppliedFailureMode(failure: AppliedFailure): AppliedFailureMode {
  return create(AppliedFailureModeSchema, {
    component: failure.component,
    mode: failure.mode === "FAIL_OPEN" ? FailureMode.FAIL_OPEN : FailureMode.FAIL_CLOSED,
    message: failure.message,
  });
}
