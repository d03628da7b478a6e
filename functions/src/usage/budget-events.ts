/**
 * BUDGET_WARNING / BUDGET_EXCEEDED / BUDGET_RESET events (eventstore Event with
 * BudgetInfo). RecordUsage stages them on its transaction (`stageManagementEvent`), so
 * the call's outbox publishes them to JetStream after the commit — never for usage that
 * rolled back — and a publish failure is logged and counted like any management event's.
 * The notifier (workers/notifier) turns them into webhook calls.
 */
import type { JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { newEvent } from "../../../core/audit/event-codec.js";
import { uuidv7 } from "../../../core/ids/uuidv7.js";
import { type Event, EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { MANAGEMENT_EVENT_SOURCE } from "../events/management-events.js";
import type { BudgetSignal, CountedBudget } from "./budget-counting.js";

const finite = (v: number) => (Number.isFinite(v) && v >= 0 ? v : 0);

/** One event per signal of the counted budget, in order. */
export function budgetEvents(
  tenantId: string,
  counted: CountedBudget,
  at: Date,
  costEventId: string,
): Event[] {
  return counted.signals.map((signal) => budgetEvent(tenantId, counted, signal, at, costEventId));
}

function budgetEvent(
  tenantId: string,
  counted: CountedBudget,
  signal: BudgetSignal,
  at: Date,
  costEventId: string,
): Event {
  const { row, window } = counted;
  const eventType =
    signal.kind === "reset"
      ? EventType.BUDGET_RESET
      : signal.exceeded
        ? EventType.BUDGET_EXCEEDED
        : EventType.BUDGET_WARNING;
  // Every event reports the usage after this call (a reset: the new period's first).
  const payload: JsonObject = {
    budget_id: row.id,
    budget_name: row.name,
    period: row.period,
    period_start: new Date(window.startMs).toISOString(),
    ...(window.endMs !== null ? { reset_at: new Date(window.endMs).toISOString() } : {}),
    usage_percent: finite(counted.percent),
    hard_limit: row.hardLimit,
    status: counted.state,
    cost_event_id: costEventId,
    ...(signal.kind === "reset"
      ? { previous_period_start: new Date(signal.previousStartMs).toISOString() }
      : { threshold_percent: signal.percent }),
    ...(row.workflowId ? { workflow_id: row.workflowId } : {}),
    ...(row.envelopeId ? { envelope_id: row.envelopeId } : {}),
  };
  return newEvent({
    eventId: uuidv7(at.getTime()),
    tenantId,
    eventType,
    timestamp: timestampFromDate(at),
    payload,
    source: MANAGEMENT_EVENT_SOURCE,
    ...(row.workflowId ? { workflowId: row.workflowId } : {}),
    ...(row.envelopeId ? { envelopeId: row.envelopeId } : {}),
    labels: { budget_id: row.id },
    details: {
      case: "budget",
      value: {
        budgetId: row.id,
        thresholdPercent: signal.kind === "threshold" ? signal.percent : 0,
        usagePercent: finite(counted.percent),
        spentUsd: row.used.costMicros / 1_000_000,
        limitUsd: (row.limits.costMicros ?? 0) / 1_000_000,
        tokensUsed: BigInt(row.used.tokens),
        tokenLimit: BigInt(row.limits.tokens ?? 0),
      },
    },
  });
}
