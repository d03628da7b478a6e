import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { microsToUsd } from "../../../core/budget/prices.js";
import { stateToProto } from "../../../core/budget/status.js";
import type { RateLimitResult } from "../../../core/rate-limit/rate-limit-outcome.js";
import type { RateLimitSpec } from "../../../core/rate-limit/rate-limit-spec.js";
import {
  type AppliedFailureMode,
  AppliedFailureModeSchema,
  BudgetCheckSchema,
  type BudgetReservation,
  BudgetReservationSchema,
  DecisionReason,
  FailureMode,
  type RateLimitState,
  RateLimitStateSchema,
} from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { BudgetCheckResult, BudgetOutcome } from "../budget/budget-gate.js";
import type { AppliedFailure, EdgeDecision } from "./decide.js";

/** The decision's machine-readable extras, as every evaluation response carries them. */
export function decisionExtras(decision: EdgeDecision): {
  reason: DecisionReason;
  rateLimits: RateLimitState[];
  failureMode: AppliedFailureMode | undefined;
  budget: BudgetReservation | undefined;
  approvalId: string;
} {
  return {
    reason: DecisionReason[decision.reason],
    rateLimits: decision.rateLimits.map((r) => toRateLimitState(r, decision.rateLimitSpecs)),
    failureMode: decision.failure ? toAppliedFailureMode(decision.failure) : undefined,
    budget: decision.budget ? toBudgetReservation(decision.budget) : undefined,
    approvalId: decision.approvalId ?? "",
  };
}

/** What the decision reserved (amounts only when a reservation is held) and each budget's state. */
export function toBudgetReservation(outcome: BudgetOutcome): BudgetReservation {
  const held = outcome.reservationId !== undefined;
  return create(BudgetReservationSchema, {
    reservationId: outcome.reservationId ?? "",
    expiresAt: held && outcome.expiresAtMs ? timestampFromMs(outcome.expiresAtMs) : undefined,
    reservedTokens: held ? BigInt(outcome.estimate.tokens) : 0n,
    reservedCostUsd: held ? microsToUsd(outcome.estimate.costMicros) : 0,
    budgets: outcome.checks.map(toBudgetCheck),
    failed: outcome.kind === "failed",
  });
}

function toBudgetCheck(check: BudgetCheckResult) {
  const left = check.remaining;
  return create(BudgetCheckSchema, {
    budgetId: check.budgetId,
    name: check.name,
    scope: check.scope,
    status: stateToProto(check.status),
    ...(left.tokens !== undefined ? { tokensRemaining: BigInt(left.tokens) } : {}),
    ...(left.costMicros !== undefined ? { costRemainingUsd: microsToUsd(left.costMicros) } : {}),
    ...(left.llmCalls !== undefined ? { llmCallsRemaining: BigInt(left.llmCalls) } : {}),
    ...(left.toolCalls !== undefined ? { toolCallsRemaining: BigInt(left.toolCalls) } : {}),
    exceeded: check.exceeded,
    resetAt: check.resetAtMs === null ? undefined : timestampFromMs(check.resetAtMs),
    reason: check.reason,
  });
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
