import type { DecisionEvent, DecisionEventSink } from "../../../core/audit/decision-event.js";
import { decisionToEvent } from "../../../core/audit/decision-to-event.js";
import type { Metrics } from "../../../core/observability/metrics.js";
import type { Event } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { type AuditShards, outgoing } from "./audit-shards.js";

export const AUDIT_APPENDED_METRIC = "fulcrum_edge_audit_events_appended_total";
export const AUDIT_APPEND_RETRIES_METRIC = "fulcrum_edge_audit_append_retries_total";
export const AUDIT_APPEND_SECONDS_METRIC = "fulcrum_edge_audit_append_duration_seconds";

/**
 * The edge's decision-event sink: each decision becomes an audit Event
 * (decisionToEvent), encoded once, and is appended to one of the audit buffer
 * instances, which stores it durably and publishes it to JetStream. Called inside
 * `waitUntil`, so the decision never waits on it. A failed append is retried once on
 * another instance; a second failure rejects (the caller counts it).
 */
export class BufferedDecisionSink implements DecisionEventSink {
  constructor(
    private readonly shards: AuditShards,
    private readonly metrics: Metrics,
  ) {}

  async publish(decision: DecisionEvent, extra: readonly Event[] = []): Promise<void> {
    // One append: the decision and what it produced (an approval request) travel together.
    const events = [decisionToEvent(decision), ...extra].map((e) => outgoing(e));
    const started = Date.now();
    try {
      await this.shards.any().append(events);
    } catch {
      this.metrics.increment(AUDIT_APPEND_RETRIES_METRIC);
      await this.shards.any().append(events);
    }
    this.metrics.increment(AUDIT_APPENDED_METRIC, {}, events.length);
    this.metrics.observe(AUDIT_APPEND_SECONDS_METRIC, (Date.now() - started) / 1000);
  }
}
