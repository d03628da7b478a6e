/**
 * Outbox of the BUDGET_* events, without an UPDATE grant (`events` is append-only for
 * the application role).
 *
 * RecordUsage writes each budget event's PostgreSQL `events` row in its own transaction,
 * the row the event processor would write for it (core/audit/governance-record.ts, id =
 * event id), plus the encoded event in `details.event`. So a threshold marked `notified`
 * always has its event on record: when the publish after the commit fails (NATS down),
 * reconciliation republishes the recent rows' events. Copies are harmless: JetStream
 * dedupes by Nats-Msg-Id (= event id) within its window, ClickHouse's ReplacingMergeTree
 * and the processor's `ON CONFLICT (id) DO NOTHING` collapse them, and the notifier keeps
 * one delivery per (webhook, event).
 */
import { sql } from "drizzle-orm";
import { decodeEvent, encodeEvent } from "../../../core/audit/event-codec.js";
import { governanceRecord } from "../../../core/audit/governance-record.js";
import { events } from "../../../db/schema/index.js";
import type { Event } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { inTenant, type Tx } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";

export const BUDGET_EVENT_ACTIONS = ["budget.warning", "budget.exceeded", "budget.reset"];
/** How far back reconciliation republishes: a few runs (every 60 s) cover a NATS outage. */
export const REPUBLISH_WINDOW_MS = 10 * 60_000;

/** Appends the events' rows (with each event encoded, base64 protobuf binary). */
export async function writeBudgetEvents(tx: Tx, budgetEvents: readonly Event[]): Promise<void> {
  if (budgetEvents.length === 0) return;
  const rows = budgetEvents.map((event) => {
    const outcome = governanceRecord(event);
    // Our own events always map: a skip here is a bug, and must roll the usage back
    // rather than commit a `notified` mark with no event on record.
    if (outcome?.kind !== "record") throw new Error(`budget event ${event.eventId} has no row`);
    const encoded = Buffer.from(encodeEvent(event)).toString("base64");
    return { ...outcome.record, details: { ...outcome.record.details, event: encoded } };
  });
  await tx.insert(events).values(rows);
}

/**
 * Publishes again the tenant's budget events recorded within REPUBLISH_WINDOW_MS of
 * `now`; returns how many. A publish that fails throws (the reconcile step fails and
 * the next run retries).
 */
export async function republishBudgetEvents(
  deps: Pick<FunctionsDeps, "db" | "eventPublisher">,
  tenantId: string,
  now: Date,
): Promise<number> {
  const since = new Date(now.getTime() - REPUBLISH_WINDOW_MS).toISOString();
  const rows = await inTenant(deps.db, tenantId, async (tx) => {
    const { rows } = await tx.execute<{ id: string; event: string }>(sql`
      select id::text as id, details->>'event' as event from events
       where action = any(${`{${BUDGET_EVENT_ACTIONS.join(",")}}`}::text[])
         and occurred_at >= ${since}::timestamptz and details ? 'event'
       order by id`);
    return rows;
  });
  let published = 0;
  for (const row of rows) {
    const decoded = decodeEvent(Buffer.from(row.event, "base64"));
    if (!decoded.ok) throw new Error(`budget event ${row.id} does not decode: ${decoded.reason}`);
    await deps.eventPublisher.publish(decoded.event);
    published++;
  }
  return published;
}
