import type { DecisionEvent, DecisionEventSink } from "../../../core/audit/decision-event.js";
import type { Logger } from "../../../core/logging/logger.js";

/**
 * The decision-event sink until the audit pipeline (NATS JetStream → ClickHouse) is
 * wired: one structured log line per decision, which Workers Logs keep. Swapping it
 * for the pipeline's sink changes nothing else (core/audit/decision-event.ts).
 */
export class LogDecisionSink implements DecisionEventSink {
  constructor(private readonly logger: Logger) {}

  async publish(event: DecisionEvent): Promise<void> {
    this.logger.info("decision", { event });
  }
}
