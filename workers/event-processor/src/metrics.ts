/**
 * The processor's Prometheus metrics (`GET /metrics`). `fulcrum_nats_pending_messages`
 * is the name the operational runbook greps for.
 */
import { Metrics } from "../../../core/observability/metrics.js";

export const M = {
  pending: "fulcrum_nats_pending_messages",
  ackPending: "fulcrum_event_processor_ack_pending",
  consumerRedelivered: "fulcrum_event_processor_consumer_redelivered",
  batchSize: "fulcrum_event_processor_batch_size",
  insertSeconds: "fulcrum_event_processor_clickhouse_insert_seconds",
  stored: "fulcrum_event_processor_events_stored_total",
  redeliveries: "fulcrum_event_processor_redeliveries_total",
  deadLetters: "fulcrum_event_processor_dead_letters_total",
  governanceRows: "fulcrum_event_processor_governance_rows_total",
  governanceSkipped: "fulcrum_event_processor_governance_skipped_total",
  approvalRows: "fulcrum_event_processor_approval_rows_total",
  batchFailures: "fulcrum_event_processor_batch_failures_total",
  errors: "fulcrum_event_processor_errors_total",
} as const;

export function createProcessorMetrics(): Metrics {
  return new Metrics()
    .describe(M.pending, "Messages in the stream not yet delivered to the consumer.", "gauge")
    .describe(M.ackPending, "Messages delivered to the processor and not yet acked.", "gauge")
    .describe(M.consumerRedelivered, "Messages the server is redelivering right now.", "gauge")
    .describeHistogram(
      M.batchSize,
      "Messages per processed batch.",
      [1, 10, 50, 100, 500, 1000, 2500, 5000, 10000],
    )
    .describeHistogram(
      M.insertSeconds,
      "Duration of one ClickHouse insert of a batch.",
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    )
    .describe(M.stored, "Events inserted into ClickHouse (redeliveries included).")
    .describe(M.redeliveries, "Messages received with a delivery count above 1.")
    .describe(M.deadLetters, "Messages parked on the dead-letter subject, by reason.")
    .describe(M.governanceRows, "New rows written to PostgreSQL events.")
    .describe(M.approvalRows, "Approvals inserted (APPROVAL_REQUESTED) or marked consumed.")
    .describe(M.governanceSkipped, "Governance events PostgreSQL can never take, by reason.")
    .describe(M.batchFailures, "Batches naked for redelivery, by store.")
    .describe(M.errors, "Errors by where they happened.");
}
