/** The notifier's Prometheus metrics (`GET /metrics`). */
import { Metrics } from "../../../core/observability/metrics.js";

export const M = {
  pending: "fulcrum_notifier_pending_messages",
  ackPending: "fulcrum_notifier_ack_pending",
  events: "fulcrum_notifier_events_total",
  attempts: "fulcrum_notifier_delivery_attempts_total",
  delivered: "fulcrum_notifier_deliveries_delivered_total",
  failed: "fulcrum_notifier_deliveries_failed_total",
  attemptSeconds: "fulcrum_notifier_attempt_seconds",
  errors: "fulcrum_notifier_errors_total",
} as const;

export function createNotifierMetrics(): Metrics {
  return new Metrics()
    .describe(
      M.pending,
      "Governance events in the stream not yet delivered to the notifier.",
      "gauge",
    )
    .describe(M.ackPending, "Events the notifier holds (in flight or waiting to retry).", "gauge")
    .describe(M.events, "Events handled, by outcome (settled, retrying, no_webhooks, skipped).")
    .describe(M.attempts, "HTTP attempts, by result (2xx, http_error, network_error, refused).")
    .describe(M.delivered, "Deliveries that reached their endpoint.")
    .describe(M.failed, "Deliveries given up after every attempt failed.")
    .describeHistogram(
      M.attemptSeconds,
      "Duration of one webhook POST.",
      [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    )
    .describe(M.errors, "Errors by where they happened.");
}
