/**
 * Which audit events the dashboard needs in PostgreSQL `events` (db/schema/events.ts),
 * and the row each becomes. Pure: the event processor decides with
 * {@link governanceRecord} and writes what it returns under the event's tenant (RLS).
 *
 * Details are a compact summary of ids, verdicts and numbers. Never the payload, labels
 * or anything else a caller wrote free-form: those may carry prompt or tool text.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Event, EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import {
  Decision,
  DecisionReason,
  Phase,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { isUuid } from "../ids/uuid.js";

/** One row of PostgreSQL `events`, in the drizzle schema's field names. */
export interface GovernanceRecord {
  id: string;
  tenantId: string;
  actorType: "user" | "api_key" | "system";
  actorId: string | null;
  action: string;
  targetType: string;
  targetId: string | null;
  details: Record<string, unknown>;
  occurredAt: Date;
}

export type GovernanceOutcome =
  | { kind: "record"; record: GovernanceRecord }
  /** Governance-relevant but unfit for the table: logged and counted, never retried. */
  | { kind: "skip"; reason: string };

const ACTIONS: Partial<Record<EventType, string>> = {
  [EventType.POLICY_VIOLATION]: "policy.violation",
  [EventType.POLICY_APPROVAL_REQUIRED]: "approval.required",
  [EventType.APPROVAL_REQUESTED]: "approval.requested",
  [EventType.APPROVAL_GRANTED]: "approval.granted",
  [EventType.APPROVAL_REJECTED]: "approval.rejected",
  [EventType.APPROVAL_EXPIRED]: "approval.expired",
  [EventType.BUDGET_WARNING]: "budget.warning",
  [EventType.BUDGET_EXCEEDED]: "budget.exceeded",
  [EventType.BUDGET_RESET]: "budget.reset",
  [EventType.MANAGEMENT_CHANGE]: "management.change",
};

/** The checks of db/schema/events.ts, so a row that would violate them is skipped early. */
const ACTION = /^[a-z][a-z0-9_.]{0,99}$/;
const ACTOR_TYPES = new Set(["user", "api_key", "system"]);
const MAX_TEXT = 256;

/** Whether `type` is one of the events that go to PostgreSQL too. */
export function isGovernanceEvent(type: EventType): boolean {
  return ACTIONS[type] !== undefined;
}

/**
 * The PostgreSQL row of a governance-relevant event; undefined for every other event.
 *
 * @example
 * const outcome = governanceRecord(event);
 * if (outcome?.kind === "record") await tx.insert(events).values(outcome.record);
 */
export function governanceRecord(event: Event): GovernanceOutcome | undefined {
  const action = ACTIONS[event.eventType];
  if (action === undefined) return undefined;
  if (!isUuid(event.tenantId)) return { kind: "skip", reason: "tenant_id is not a UUID" };
  if (!isUuid(event.eventId)) return { kind: "skip", reason: "event_id is not a UUID" };
  if (!event.timestamp) return { kind: "skip", reason: "timestamp is missing" };
  const base = {
    id: event.eventId.toLowerCase(),
    tenantId: event.tenantId.toLowerCase(),
    occurredAt: timestampDate(event.timestamp),
  };
  if (event.eventType === EventType.MANAGEMENT_CHANGE) return managementRecord(event, base);

  const details = compact({
    event_type: EventType[event.eventType],
    execution_id: event.executionId,
    envelope_id: event.envelopeId,
    workflow_id: event.workflowId,
    ...policyDetails(event),
    ...budgetDetails(event),
    trace_id: event.traceId,
  });
  const decision = event.details.case === "decision" ? event.details.value : undefined;
  const actor = decision?.apiKeyId
    ? { actorType: "api_key" as const, actorId: text(decision.apiKeyId) }
    : { actorType: "system" as const, actorId: text(event.source) || null };
  return {
    kind: "record",
    record: { ...base, ...actor, action, ...target(event), details },
  };
}

function managementRecord(
  event: Event,
  base: Pick<GovernanceRecord, "id" | "tenantId" | "occurredAt">,
): GovernanceOutcome {
  if (event.details.case !== "management") {
    return { kind: "skip", reason: "MANAGEMENT_CHANGE without management details" };
  }
  const m = event.details.value;
  if (!ACTOR_TYPES.has(m.actorType)) {
    return { kind: "skip", reason: "management.actor_type is not user, api_key or system" };
  }
  if (!ACTION.test(m.action)) return { kind: "skip", reason: "management.action is malformed" };
  if (m.targetType.length < 1 || m.targetType.length > 100) {
    return { kind: "skip", reason: "management.target_type must be 1-100 characters" };
  }
  return {
    kind: "record",
    record: {
      ...base,
      actorType: m.actorType as GovernanceRecord["actorType"],
      actorId: text(m.actorId) || null,
      action: m.action,
      targetType: m.targetType,
      targetId: text(m.targetId) || null,
      details: compact({ source: event.source, trace_id: event.traceId }),
    },
  };
}

/** What the event is about: the policy, the budget, else the envelope or execution. */
function target(event: Event): Pick<GovernanceRecord, "targetType" | "targetId"> {
  const policyId = event.policyResult?.policyId;
  if (policyId) return { targetType: "policy", targetId: text(policyId) };
  if (event.details.case === "budget" && event.details.value.budgetId) {
    return { targetType: "budget", targetId: text(event.details.value.budgetId) };
  }
  if (event.envelopeId) return { targetType: "envelope", targetId: text(event.envelopeId) };
  return { targetType: "execution", targetId: text(event.executionId) || null };
}

function policyDetails(event: Event): Record<string, unknown> {
  const result = event.policyResult;
  const decision = event.details.case === "decision" ? event.details.value : undefined;
  return {
    decision:
      result && result.decision !== Decision.UNSPECIFIED ? Decision[result.decision] : undefined,
    policy_id: result?.policyId,
    rule_id: result?.ruleId,
    decision_id: result?.decisionId,
    // The policy's own message (written by the policy author), capped; not request text.
    reason: result?.reason ? text(result.reason, 1024) : undefined,
    method: decision?.method,
    decision_reason:
      decision && decision.reason !== DecisionReason.UNSPECIFIED
        ? DecisionReason[decision.reason]
        : undefined,
    phase: decision && decision.phase !== Phase.UNSPECIFIED ? Phase[decision.phase] : undefined,
    dry_run: decision?.dryRun || undefined,
    user_id: decision?.userId,
    model_id: decision?.modelId || event.tokenInfo?.modelId,
    tool_names: decision?.toolNames.length ? decision.toolNames.slice(0, 64) : undefined,
    action: decision?.action,
    matched_rules: decision?.matchedRules.length
      ? decision.matchedRules.slice(0, 32).map((r) => `${r.policyId}/${r.ruleId}`)
      : undefined,
    rate_limits_exceeded: decision?.rateLimitsExceeded.length
      ? decision.rateLimitsExceeded.slice(0, 64)
      : undefined,
  };
}

function budgetDetails(event: Event): Record<string, unknown> {
  if (event.details.case !== "budget") return {};
  const b = event.details.value;
  return {
    budget_id: b.budgetId,
    threshold_percent: b.thresholdPercent,
    usage_percent: b.usagePercent,
    spent_usd: b.spentUsd,
    limit_usd: b.limitUsd,
    tokens_used: b.tokensUsed ? Number(b.tokensUsed) : undefined,
    token_limit: b.tokenLimit ? Number(b.tokenLimit) : undefined,
  };
}

function text(value: string, max = MAX_TEXT): string {
  return value.length > max ? value.slice(0, max) : value;
}

/** Drops empty strings, undefined and null so the JSON stays small. */
function compact(values: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    if (value === undefined || value === null || value === "") continue;
    out[key] = typeof value === "string" ? text(value, 1024) : value;
  }
  return out;
}
