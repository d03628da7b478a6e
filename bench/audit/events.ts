/**
 * The events bench:audit publishes: a realistic mix of what producers send, none of
 * it governance-relevant (so the processor writes ClickHouse only, no PostgreSQL):
 *
 *   40 %  POLICY_EVALUATED   an edge ALLOW decision, through decisionToEvent
 *   30 %  LLM_CALL_COMPLETED token_info (model, tokens, cost, latencies), trace ids
 *   15 %  TOOL_INVOKED       tool name and arguments digest in the payload
 *   15 %  TOOL_COMPLETED     tool result size and duration in the payload
 *
 * spread over `tenants` tenants (slugs `bench-tNN`), with ids and timestamps of the
 * moment the event is built: build it right before publishing, and its timestamp is
 * its publish time (the lag phases compute `inserted_at − event_time` from that).
 * Encoded, an event is 300–600 bytes.
 */
import type { JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { DecisionEvent } from "../../core/audit/decision-event.js";
import { decisionToEvent } from "../../core/audit/decision-to-event.js";
import { encodeEvent, newEvent } from "../../core/audit/event-codec.js";
import { eventSubject } from "../../core/audit/event-subject.js";
import { uuidv7 } from "../../core/ids/uuidv7.js";
import { type Event, EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";

export interface BenchMessage {
  subject: string;
  /** The event id: `Nats-Msg-Id`, so JetStream deduplicates a retried publish. */
  id: string;
  tenantId: string;
  data: Uint8Array;
}

const MODELS = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4", "llama-3.1-70b"];
const TOOLS = ["read_file", "search_docs", "http_get", "sql_query", "send_email"];

export function benchTenant(index: number): string {
  return `bench-t${String(index).padStart(2, "0")}`;
}

const hex = (n: number, width: number) => n.toString(16).padStart(width, "0").slice(-width);

/** What the processor's PostgreSQL path ignores: only the ClickHouse insert is timed. */
export const BENCH_EVENT_TYPES = [
  EventType.POLICY_EVALUATED,
  EventType.LLM_CALL_COMPLETED,
  EventType.TOOL_INVOKED,
  EventType.TOOL_COMPLETED,
] as const;

function decision(i: number, tenantId: string, at: Date): Event {
  const d: DecisionEvent = {
    decision_id: uuidv7(at.getTime()),
    tenant_id: tenantId,
    api_key_id: `key_${hex(i % 97, 8)}`,
    method: "CheckPolicy",
    decided_at: at.toISOString(),
    decision: "ALLOW",
    reason: "POLICY",
    dry_run: false,
    policies: [
      { policy_id: `pol_${hex(i % 7, 12)}`, version: "3", decision: "ALLOW", dry_run: false },
    ],
    matched_rules: [],
    rate_limits_exceeded: [],
    workflow_id: `wf_${hex(i % 50, 6)}`,
    envelope_id: `env_${hex(i >> 3, 10)}`,
    user_id: `user_${hex(i % 300, 6)}`,
    phase: "PRE_TOOL_CALL",
    model_id: MODELS[i % MODELS.length],
    tool_names: [TOOLS[i % TOOLS.length] as string],
    action: "tool_call",
    evaluation_duration_ms: 0.4 + (i % 10) / 10,
  };
  return decisionToEvent(d, "bench-audit");
}

function execution(i: number, tenantId: string, at: Date, type: EventType): Event {
  const tool = TOOLS[i % TOOLS.length] as string;
  const model = MODELS[i % MODELS.length] as string;
  const common = {
    eventId: uuidv7(at.getTime()),
    tenantId,
    executionId: `exec_${hex(i >> 4, 10)}`,
    envelopeId: `env_${hex(i >> 3, 10)}`,
    workflowId: `wf_${hex(i % 50, 6)}`,
    eventType: type,
    timestamp: timestampFromDate(at),
    traceId: `${hex(i, 16)}${hex(i * 7919, 16)}`,
    spanId: hex(i * 31, 16),
    source: "bench-audit",
    labels: { env: "bench", team: `team-${i % 5}` },
  };
  if (type === EventType.LLM_CALL_COMPLETED) {
    return newEvent({
      ...common,
      tokenInfo: {
        modelId: model,
        inputTokens: BigInt(200 + (i % 1800)),
        outputTokens: BigInt(50 + (i % 600)),
        costUsd: 0.0004 + (i % 100) / 10_000,
        timeToFirstTokenMs: 180 + (i % 200),
        latencyMs: 900 + (i % 2000),
      },
      payload: {
        finish_reason: "stop",
        prompt_template: `summarise-v${i % 4}`,
        request_id: `chatcmpl-${hex(i * 40503, 12)}${hex(i, 12)}`,
        region: i % 2 ? "eu-west-1" : "us-east-1",
        stream: i % 3 === 0,
      },
    });
  }
  const fields: JsonObject =
    type === EventType.TOOL_INVOKED
      ? {
          tool,
          arguments: {
            path: `/srv/data/reports/2026/q${1 + (i % 4)}/summary-${hex(i, 6)}.md`,
            max_bytes: 65536,
          },
          args_digest: `sha256:${hex(i * 2654435761, 16)}${hex(i * 97, 16)}`,
          timeout_ms: 30_000,
        }
      : {
          tool,
          result_bytes: 512 + (i % 4096),
          duration_ms: 12 + (i % 300),
          ok: true,
          result_digest: `sha256:${hex(i * 2246822519, 16)}${hex(i * 13, 16)}`,
        };
  return newEvent({
    ...common,
    payload: fields,
  });
}

/** Event `i` of a run, stamped `at` (default now), on one of `tenants` tenants. */
export function benchEvent(i: number, tenants: number, at = new Date()): Event {
  const tenantId = benchTenant(i % tenants);
  const slot = i % 20;
  if (slot < 8) return decision(i, tenantId, at);
  if (slot < 14) return execution(i, tenantId, at, EventType.LLM_CALL_COMPLETED);
  if (slot < 17) return execution(i, tenantId, at, EventType.TOOL_INVOKED);
  return execution(i, tenantId, at, EventType.TOOL_COMPLETED);
}

/** `event` with `source` replaced: the lag phases tell their rows apart by source. */
export function benchMessage(event: Event, source?: string): BenchMessage {
  if (source !== undefined) event.source = source;
  return {
    subject: eventSubject(event.tenantId, event.eventType),
    id: event.eventId,
    tenantId: event.tenantId,
    data: encodeEvent(event),
  };
}
