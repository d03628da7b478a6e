/**
 * The audit hand-off of every decision the edge makes. The edge builds one
 * {@link DecisionEvent} per decision and hands it to a {@link DecisionEventSink}
 * after the response is sent (`ctx.waitUntil`), so auditing never delays a decision.
 * The audit pipeline (NATS JetStream → ClickHouse) implements the sink; until it is
 * wired, the edge's sink writes the event as one structured log line.
 *
 * Web-standard only. The event carries no request text (input/output text stay
 * with the caller); it names what decided and why.
 */
import type { Event } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { DecisionName } from "../policy/tenant-config.js";

export type DecisionReasonName =
  | "POLICY"
  | "RATE_LIMITED"
  | "NO_ACTIVE_POLICIES"
  | "FAIL_CLOSED"
  | "BUDGET_EXCEEDED"
  | "ENVELOPE"
  | "APPROVED";

export interface DecisionEvent {
  /** The decision id returned to the caller (UUIDv7): the audit correlation key. */
  decision_id: string;
  tenant_id: string;
  /** The API key that asked. */
  api_key_id: string;
  /** The RPC: "CheckPolicy", "EvaluatePolicy" or "EvaluatePolicies". */
  method: string;
  /** RFC 3339, when the decision was made. */
  decided_at: string;
  decision: DecisionName;
  reason: DecisionReasonName;
  /** The request asked for a dry run. */
  dry_run: boolean;
  /** Every policy evaluated, with the version that decided and its own verdict. */
  policies: { policy_id: string; version: string; decision: DecisionName; dry_run: boolean }[];
  matched_rules: { policy_id: string; rule_id: string }[];
  /** Ids of the rate limits the call exceeded. */
  rate_limits_exceeded: string[];
  /** Set when a dependency failed and a failure mode decided. */
  failure_mode?: { component: string; mode: "FAIL_OPEN" | "FAIL_CLOSED"; message: string };
  workflow_id?: string;
  envelope_id?: string;
  user_id?: string;
  phase?: string;
  model_id?: string;
  tool_names?: string[];
  action?: string;
  /** The approval a REQUIRE_APPROVAL decision created or found, or an APPROVED one consumed. */
  approval_id?: string;
  evaluation_duration_ms: number;
}

/**
 * Where decision events go. `publish` is called off the response path; it must not
 * throw for a delivery failure it can absorb (it reports it instead), and should
 * retry transient ones itself.
 */
export interface DecisionEventSink {
  /** `extra`: events the decision produced beside its own (e.g. APPROVAL_REQUESTED), stored with it. */
  publish(event: DecisionEvent, extra?: readonly Event[]): Promise<void>;
}
