/**
 * An event as a row of ClickHouse `events` (db/clickhouse/migrations) and back. The
 * processor writes rows with {@link eventToRow}; the query API reads them with
 * {@link rowToEvent}. `event_json` carries the whole event, so a row gives back
 * exactly what was published plus where it was stored.
 */
import { fromJsonString, toJsonString } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Event, EventSchema } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { Decision } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { eventTypeName } from "./event-subject.js";

/** The columns of ClickHouse `events` this code writes (inserted_at is the server's). */
export interface EventRow {
  tenant_id: string;
  event_time: string;
  event_id: string;
  event_type: string;
  custom_type: string;
  execution_id: string;
  envelope_id: string;
  workflow_id: string;
  decision: string;
  decision_id: string;
  policy_id: string;
  rule_id: string;
  model_id: string;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  trace_id: string;
  span_id: string;
  source: string;
  labels: Record<string, string>;
  stream_sequence: number;
  stored_at: string;
  event_json: string;
}

/** ClickHouse's DateTime64(3) text form, in UTC: `2026-11-24 16:07:37.775`. */
export function clickHouseTime(date: Date): string {
  return date.toISOString().replace("T", " ").replace("Z", "");
}

/** The inverse of {@link clickHouseTime}. */
export function dateFromClickHouse(value: string): Date {
  return new Date(`${value.replace(" ", "T")}Z`);
}

export function eventToRow(event: Event, stored: { sequence: number; storedAt: Date }): EventRow {
  const time = event.timestamp ? timestampDate(event.timestamp) : stored.storedAt;
  const policy = event.policyResult;
  const tokens = event.tokenInfo;
  return {
    tenant_id: event.tenantId,
    event_time: clickHouseTime(time),
    event_id: event.eventId,
    event_type: eventTypeName(event.eventType),
    custom_type: event.customType,
    execution_id: event.executionId,
    envelope_id: event.envelopeId,
    workflow_id: event.workflowId,
    decision: policy && policy.decision !== Decision.UNSPECIFIED ? Decision[policy.decision] : "",
    decision_id: policy?.decisionId ?? "",
    policy_id: policy?.policyId ?? "",
    rule_id: policy?.ruleId ?? "",
    model_id: tokens?.modelId ?? "",
    input_tokens: Number(tokens?.inputTokens ?? 0n),
    output_tokens: Number(tokens?.outputTokens ?? 0n),
    cost_usd: tokens?.costUsd ?? 0,
    trace_id: event.traceId,
    span_id: event.spanId,
    source: event.source,
    labels: event.labels,
    stream_sequence: stored.sequence,
    stored_at: clickHouseTime(stored.storedAt),
    event_json: toJsonString(EventSchema, event),
  };
}

/** A row read back (event_json, stream_sequence, stored_at) as the API's Event. */
export function rowToEvent(row: {
  event_json: string;
  stream_sequence: string | number;
  stored_at: string;
}): Event {
  const event = fromJsonString(EventSchema, row.event_json, { ignoreUnknownFields: true });
  event.sequence = BigInt(row.stream_sequence);
  event.storedAt = timestampFromDate(dateFromClickHouse(row.stored_at));
  return event;
}
