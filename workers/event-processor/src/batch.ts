/**
 * One batch, from messages to stored rows and acks. The order is what makes the
 * pipeline lossless: a message is acked only after everything it needs is durable
 * (its ClickHouse row, its PostgreSQL row if any, or its dead letter); anything that
 * fails is naked with backoff and comes back. A message that comes back twice is
 * harmless: ClickHouse collapses rows with the same (tenant, time, event id) and
 * PostgreSQL inserts with ON CONFLICT (id) DO NOTHING.
 */
import { decodeEvent, MAX_EVENT_BYTES } from "../../../core/audit/event-codec.js";
import { type EventRow, eventToRow } from "../../../core/audit/event-row.js";
import { governanceRecord } from "../../../core/audit/governance-record.js";
import type { Logger } from "../../../core/logging/logger.js";
import type { Metrics } from "../../../core/observability/metrics.js";
import { approvalChange } from "./approval-change.js";
import { describeFailure, isClickHouseRejection, redeliveryDelayMs } from "./failures.js";
import type { GovernanceWrite, GovernanceWriteResult } from "./governance-writer.js";
import { M } from "./metrics.js";

/** The part of a JetStream message (JsMsg) a batch uses. */
export interface InboundMessage {
  subject: string;
  seq: number;
  data: Uint8Array;
  info: { deliveryCount: number; timestampNanos: number };
  ack(): void;
  nak(millis?: number): void;
}

export type DeadLetterCategory = "oversized" | "undecodable" | "invalid" | "rejected";

export interface BatchStores {
  /** One insert of every row; throws when it failed. */
  insertEvents(rows: EventRow[]): Promise<void>;
  /** Writes the `events` records and approval changes (idempotently); throws on a transient failure. */
  writeGovernance(writes: GovernanceWrite[]): Promise<GovernanceWriteResult>;
  /** Publishes the message to its dead-letter subject; throws when not stored. */
  deadLetter(message: InboundMessage, category: DeadLetterCategory, reason: string): Promise<void>;
}

export interface BatchOptions {
  maxDeliver: number;
  /**
   * Fault injection for tests only (EVENT_PROCESSOR_FAULT_ACK_DELAY_MS): wait this long
   * between storing a batch and acking it, so a test can kill the process in exactly
   * that window and watch the redelivered rows collapse. 0 in every deployment.
   */
  faultAckDelayMs?: number;
  metrics: Metrics;
  logger: Logger;
}

export interface BatchResult {
  stored: number;
  deadLettered: number;
  naked: number;
}

interface Valid {
  message: InboundMessage;
  row: EventRow;
  governance: ReturnType<typeof governanceRecord>;
  approval: ReturnType<typeof approvalChange>;
}

export async function processBatch(
  messages: readonly InboundMessage[],
  stores: BatchStores,
  { maxDeliver, metrics, logger, faultAckDelayMs = 0 }: BatchOptions,
): Promise<BatchResult> {
  const result: BatchResult = { stored: 0, deadLettered: 0, naked: 0 };
  metrics.observe(M.batchSize, messages.length);
  const valid: Valid[] = [];
  const malformed: { message: InboundMessage; category: DeadLetterCategory; reason: string }[] = [];
  for (const message of messages) {
    if (message.info.deliveryCount > 1) metrics.increment(M.redeliveries);
    const decoded = decodeEvent(message.data);
    if (!decoded.ok) {
      malformed.push({ message, category: categoryOf(message, decoded.reason), ...decoded });
      continue;
    }
    const storedAt = new Date(Math.floor(message.info.timestampNanos / 1e6));
    valid.push({
      message,
      row: eventToRow(decoded.event, { sequence: message.seq, storedAt }),
      governance: governanceRecord(decoded.event),
      approval: approvalChange(decoded.event),
    });
  }

  const nak = (items: { message: InboundMessage }[], store: string, error: unknown) => {
    if (items.length === 0) return;
    metrics.increment(M.batchFailures, { store });
    logger.error("batch not stored; redelivering with backoff", {
      store,
      messages: items.length,
      error: describeFailure(error),
    });
    for (const { message } of items) message.nak(redeliveryDelayMs(message.info.deliveryCount));
    result.naked += items.length;
  };
  const deadLetter = async (
    message: InboundMessage,
    category: DeadLetterCategory,
    reason: string,
  ): Promise<boolean> => {
    try {
      await stores.deadLetter(message, category, reason);
    } catch (error) {
      nak([{ message }], "dead_letter", error);
      return false;
    }
    metrics.increment(M.deadLetters, { reason: category });
    logger.info("event dead-lettered", {
      subject: message.subject,
      streamSequence: message.seq,
      deliveries: message.info.deliveryCount,
      category,
      reason,
    });
    message.ack();
    result.deadLettered++;
    return true;
  };

  for (const item of malformed) await deadLetter(item.message, item.category, item.reason);

  let inserted: Valid[];
  try {
    inserted = await insertIsolating(valid, stores, metrics);
  } catch (error) {
    nak(valid, "clickhouse", error);
    return result;
  }
  const insertedSet = new Set(inserted);
  for (const item of valid) {
    if (insertedSet.has(item)) continue;
    // ClickHouse refused this row itself: retry a few times, then park it.
    if (item.message.info.deliveryCount >= maxDeliver) {
      await deadLetter(item.message, "rejected", "ClickHouse rejected the row");
    } else {
      nak([item], "clickhouse_rejected", new Error("ClickHouse rejected the row"));
    }
  }
  metrics.increment(M.stored, {}, inserted.length);

  const writes: GovernanceWrite[] = [];
  for (const item of inserted) {
    const outcome = item.governance;
    if (outcome?.kind === "record") writes.push({ kind: "record", record: outcome.record });
    else if (outcome?.kind === "skip") skipGovernance(item.row.event_id, outcome.reason);
    const approval = item.approval;
    if (approval?.kind === "change") writes.push({ kind: "approval", change: approval.change });
    else if (approval?.kind === "skip") skipGovernance(item.row.event_id, approval.reason);
  }
  if (writes.length > 0) {
    try {
      const written = await stores.writeGovernance(writes);
      metrics.increment(M.governanceRows, {}, written.written);
      if (written.approvals > 0) metrics.increment(M.approvalRows, {}, written.approvals);
      for (const { id, reason } of written.skipped) skipGovernance(id, reason);
    } catch (error) {
      nak(inserted, "postgres", error);
      return result;
    }
  }
  if (faultAckDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, faultAckDelayMs));
  for (const item of inserted) item.message.ack();
  result.stored = inserted.length;
  return result;

  function skipGovernance(eventId: string, reason: string) {
    metrics.increment(M.governanceSkipped, { reason: reason.split(":")[0] ?? reason });
    logger.info("governance event not written to PostgreSQL", { eventId, reason });
  }
}

/**
 * Inserts every row in one statement. When ClickHouse rejects the data, inserts them one
 * at a time so only the rows at fault stay behind. Returns the rows stored; throws on a
 * transient failure (nothing is known to be stored then).
 */
async function insertIsolating(
  items: Valid[],
  stores: BatchStores,
  metrics: Metrics,
): Promise<Valid[]> {
  if (items.length === 0) return [];
  const insert = async (rows: EventRow[]) => {
    const started = performance.now();
    await stores.insertEvents(rows);
    metrics.observe(M.insertSeconds, (performance.now() - started) / 1000);
  };
  try {
    await insert(items.map((i) => i.row));
    return items;
  } catch (error) {
    if (!isClickHouseRejection(error) || items.length === 1) {
      if (items.length === 1 && isClickHouseRejection(error)) return [];
      throw error;
    }
  }
  const stored: Valid[] = [];
  for (const item of items) {
    try {
      await insert([item.row]);
      stored.push(item);
    } catch (error) {
      if (!isClickHouseRejection(error)) throw error;
    }
  }
  return stored;
}

function categoryOf(message: InboundMessage, reason: string): DeadLetterCategory {
  if (message.data.byteLength > MAX_EVENT_BYTES) return "oversized";
  if (reason.startsWith("not a protobuf")) return "undecodable";
  return "invalid";
}
