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
  Decision,
  DecisionReason,
  MatchedRule,
  PolicyResult,
  RateLimit,
  Verdict,
} from "./decision.js";
export {
  Envelope,
  type EnvelopeOptions,
  type EnvelopeStatus,
  type FailedEvent,
  type GuardOptions,
  type LogOptions,
} from "./envelope.js";
export { type ErrorCode, FulcrumError, isTransportFailure } from "./errors.js";
export { SDK_SOURCE, SDK_VERSION } from "./version.js";
