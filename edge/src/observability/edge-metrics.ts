import { Metrics } from "../../../core/observability/metrics.js";

/** The edge's metrics, declared once so `/metrics` lists them before anything is counted. */
export function createEdgeMetrics(): Metrics {
  return new Metrics()
    .describe("fulcrum_policy_decisions_total", "Decisions by decision and reason.")
    .describe(
      "fulcrum_policy_failure_mode_total",
      "Decisions a dependency failure decided, by component and failure mode (FAIL_OPEN / FAIL_CLOSED).",
    )
    .describe(
      "fulcrum_policy_evaluation_duration_seconds_sum",
      "Total policy evaluation time (0 in deployed Workers, whose clock stops without I/O).",
    )
    .describe("fulcrum_policy_evaluation_duration_seconds_count", "Policy evaluations timed.")
    .describe(
      "fulcrum_policy_decision_events_failed_total",
      "Decision events that could not be handed to the audit sink.",
    )
    .describe(
      "fulcrum_edge_bundle_loads_total",
      "Tenant bundle loads from Redis by outcome (loaded, kept_last_good, failed).",
    );
}
