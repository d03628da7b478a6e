import { withDeadline } from "../../../core/async/deadline.js";
import { Metrics } from "../../../core/observability/metrics.js";
import type { AuditShards } from "../audit/audit-shards.js";

/** How long a scrape waits for one audit buffer's stats. */
const STATS_TIMEOUT_MS = 1000;

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
    )
    .describe(
      "fulcrum_edge_budget_set_loads_total",
      "Tenant BudgetSet reads from Redis by outcome (loaded, kept_last_good, failed).",
    )
    .describe(
      "fulcrum_edge_budget_reservations_total",
      "Budget steps of decisions by outcome (reserved, checked: nothing to reserve, refused, failed, released, already_gone: released at its TTL or settled already, release_failed).",
    )
    .describe(
      "fulcrum_edge_approvals_total",
      "Approval steps of REQUIRE_APPROVAL decisions by outcome (created, pending, granted, rejected, failed).",
    )
    .describe(
      "fulcrum_edge_audit_events_appended_total",
      "Decision events handed to the audit buffer (stored durably there).",
    )
    .describe(
      "fulcrum_edge_audit_append_retries_total",
      "Audit buffer appends retried on another instance after a failure.",
    )
    .describeHistogram(
      "fulcrum_edge_audit_append_duration_seconds",
      "Time of one audit buffer append as the Worker sees it (after the response, in waitUntil).",
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    )
    .describe(
      "fulcrum_edge_audit_events_published_total",
      "Events the SDK publish path (EventStoreService) stored, by outcome (published, duplicate, buffered).",
    )
    .describe(
      "fulcrum_edge_audit_buffer_events",
      "Events waiting in an audit buffer instance, by shard (read at scrape time).",
      "gauge",
    )
    .describe(
      "fulcrum_edge_audit_buffer_oldest_seconds",
      "Age of the oldest event waiting in an audit buffer instance, by shard.",
      "gauge",
    )
    .describe(
      "fulcrum_edge_audit_buffer_connected",
      "1 when an audit buffer instance holds an open NATS connection, by shard.",
      "gauge",
    )
    .describe(
      "fulcrum_edge_audit_buffer_published",
      "Events an audit buffer instance published since it started, by shard.",
      "gauge",
    )
    .describe(
      "fulcrum_edge_audit_buffer_publish_failures",
      "Failed publishes of an audit buffer instance since it started, by shard.",
      "gauge",
    );
}

/**
 * Reads every audit buffer instance's stats() into the shard gauges (at scrape time).
 * An instance that does not answer in time keeps its last values.
 */
export async function collectAuditBufferMetrics(
  metrics: Metrics,
  shards: AuditShards,
): Promise<void> {
  await Promise.all(
    Array.from({ length: shards.count }, async (_, n) => {
      const shard = { shard: String(n) };
      try {
        const stats = await withDeadline(shards.shard(n).stats(), STATS_TIMEOUT_MS);
        metrics.set("fulcrum_edge_audit_buffer_events", stats.buffered, shard);
        metrics.set("fulcrum_edge_audit_buffer_oldest_seconds", stats.oldestAgeMs / 1000, shard);
        metrics.set("fulcrum_edge_audit_buffer_connected", stats.connected ? 1 : 0, shard);
        metrics.set("fulcrum_edge_audit_buffer_published", stats.publishedTotal, shard);
        metrics.set(
          "fulcrum_edge_audit_buffer_publish_failures",
          stats.publishFailuresTotal,
          shard,
        );
      } catch {
        // Scrapes must not fail because one instance is slow.
      }
    }),
  );
}
