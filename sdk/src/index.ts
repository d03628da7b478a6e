export {
  type ApprovalOutcome,
  type ApprovalState,
  type ApprovedDecision,
  type WaitForApprovalOptions,
  type WithApprovalOptions,
  withApproval,
} from "./approvals.js";
export type { BudgetStatus } from "./budget.js";
export {
  apiKeyInterceptor,
  type CheckOptions,
  type EvaluateOptions,
  type FailureMode,
  FulcrumClient,
  type FulcrumClientOptions,
  type GuardContext,
  type PhaseName,
} from "./client.js";
export type {
  Action,
  AppliedFailureMode,
  BudgetCheck,
  BudgetReservation,
  BudgetStateName,
  Decision,
  DecisionData,
  DecisionReason,
  MatchedRule,
  PolicyResult,
  RateLimit,
  Verdict,
} from "./decision.js";
export {
  type ChildEnvelopeOptions,
  Envelope,
  type EnvelopeGovernance,
  type EnvelopeOptions,
  type EnvelopeStatus,
  type FailedEvent,
  type GuardOptions,
  type LogOptions,
  type RunOptions,
} from "./envelope.js";
export {
  AlreadySettledError,
  type ErrorCode,
  FulcrumError,
  isTransportFailure,
} from "./errors.js";
export type { RecordUsageInput, SettleOptions, SettleResult, Usage } from "./usage.js";
export { SDK_SOURCE, SDK_VERSION } from "./version.js";
