import { DurableObject } from "cloudflare:workers";
import { createLogger, type Logger } from "../../../core/logging/logger.js";
import { type AuditTransportConfig, type Env, parseAuditTransportConfig } from "../config.js";
import { JetStreamLink, type OutgoingEvent, type PublishOutcome } from "./jetstream-link.js";

/** Appended events wait this long for others before the alarm publishes them together. */
const BATCH_DELAY_MS = 25;
/** Rows one alarm publishes (concurrently) before it re-arms. */
const FLUSH_BATCH = 1000;
/** PubAck deadline in the alarm; publishNow answers the SDK sooner. */
const FLUSH_TIMEOUT_MS = 5000;
const PUBLISH_NOW_TIMEOUT_MS = 2000;
const BACKOFF_MIN_MS = 1000;
// Short: a timeout under load (not an outage) must not hold events back for long.
const BACKOFF_MAX_MS = 5_000;

/** One event's outcome of {@link AuditBuffer.publishNow}. */
export interface PublishResult {
  eventId: string;
  /** Stream sequence; 0 when buffered. */
  sequence: number;
  duplicate: boolean;
  /** Epoch ms: when JetStream acknowledged it, or when the buffer stored it. */
  storedAt: number;
  /** NATS could not take it now: it is durable here and the alarm will deliver it. */
  buffered: boolean;
}

export interface AuditBufferStats {
  buffered: number;
  /** Age of the oldest buffered event in ms (0 when empty). */
  oldestAgeMs: number;
  connected: boolean;
  publishedTotal: number;
  publishFailuresTotal: number;
  /** Consecutive failed flushes (the backoff exponent). */
  consecutiveFailures: number;
}

interface Row {
  seq: number;
  event: OutgoingEvent;
  bufferedAt: number;
}

/**
 * Buffers audit events durably (SQLite storage) and publishes them to JetStream over
 * one NATS WebSocket connection kept across requests and alarms. `append` returns once
 * the events are stored; an alarm ~25 ms later publishes whatever arrived meanwhile,
 * concurrently, with `Nats-Msg-Id` = event id, and deletes what was acknowledged. A
 * failed publish keeps the rows and retries with backoff (1 s doubling to 5 s) — the
 * alarm handles its own errors rather than relying on the runtime's alarm retries —
 * and a reconnect drains at once. Delivery is at least once; the event id makes it
 * exactly once downstream (JetStream duplicate window, ClickHouse ReplacingMergeTree).
 *
 * The counters are this instance's, since it was last started (stats()).
 */
export class AuditBuffer extends DurableObject<Env> {
  private readonly sql: SqlStorage;
  private readonly logger: Logger;
  private readonly config: AuditTransportConfig;
  private readonly link: JetStreamLink;
  /** Rows a publish is under way for, so the alarm does not send them a second time. */
  private readonly inFlight = new Set<number>();
  private failures = 0;
  /**
   * When the alarm is set for, as far as this instance knows: appends then touch
   * storage once (the row), not three times (row, getAlarm, setAlarm). Lost on eviction,
   * which costs one redundant setAlarm.
   */
  private alarmAt: number | undefined;
  private publishedTotal = 0;
  private publishFailuresTotal = 0;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.logger = createLogger("fulcrum-edge-audit");
    this.config = parseAuditTransportConfig(env);
    this.link = new JetStreamLink(this.config, this.logger, () => {
      // NATS is back: drain now instead of waiting out the backoff.
      this.failures = 0;
      void this.setAlarm(Date.now());
    });
    this.sql.exec(`CREATE TABLE IF NOT EXISTS audit_events (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      event_id TEXT NOT NULL,
      subject TEXT NOT NULL,
      body BLOB NOT NULL,
      buffered_at INTEGER NOT NULL
    )`);
  }

  /** Stores the events; they are published within ~25 ms when NATS is up. */
  async append(events: readonly OutgoingEvent[]): Promise<void> {
    this.insert(events);
    await this.armSoon();
  }

  /**
   * Stores the events, then publishes them right away: the SDK's publish path, which
   * answers with stream sequences. Events NATS cannot take now stay buffered
   * (`buffered: true`) and the alarm delivers them.
   */
  async publishNow(events: readonly OutgoingEvent[]): Promise<PublishResult[]> {
    const rows = this.insert(events);
    if (this.link.reconnecting) {
      await this.armSoon();
      return rows.map(bufferedResult);
    }
    const outcomes = await this.publishRows(rows, PUBLISH_NOW_TIMEOUT_MS);
    if (outcomes.some((o) => !o.ok)) await this.armSoon();
    const now = Date.now();
    return rows.map((row, i) => {
      const outcome = outcomes[i];
      if (!outcome?.ok) return bufferedResult(row);
      return {
        eventId: row.event.id,
        sequence: outcome.ack.seq,
        duplicate: outcome.ack.duplicate,
        storedAt: now,
        buffered: false,
      };
    });
  }

  stats(): AuditBufferStats {
    const [row] = this.sql
      .exec<{ n: number; oldest: number | null }>(
        "SELECT COUNT(*) AS n, MIN(buffered_at) AS oldest FROM audit_events",
      )
      .toArray();
    return {
      buffered: row?.n ?? 0,
      oldestAgeMs: row?.oldest ? Date.now() - row.oldest : 0,
      connected: this.link.connected,
      publishedTotal: this.publishedTotal,
      publishFailuresTotal: this.publishFailuresTotal,
      consecutiveFailures: this.failures,
    };
  }

  override async alarm(): Promise<void> {
    this.alarmAt = undefined;
    try {
      await this.flush();
    } catch (error) {
      this.logger.error("audit buffer flush failed", { error: String(error) });
      await this.backOff();
    }
  }

  private async flush(): Promise<void> {
    const exclude = [...this.inFlight];
    const rows = this.sql
      .exec<{ seq: number; event_id: string; subject: string; body: ArrayBuffer; at: number }>(
        `SELECT seq, event_id, subject, body, buffered_at AS at FROM audit_events
         ORDER BY seq LIMIT ?`,
        FLUSH_BATCH + exclude.length,
      )
      .toArray()
      .filter((r) => !this.inFlight.has(r.seq))
      .slice(0, FLUSH_BATCH)
      .map((r) => ({
        seq: r.seq,
        bufferedAt: r.at,
        event: { id: r.event_id, subject: r.subject, body: new Uint8Array(r.body) },
      }));
    if (rows.length === 0) {
      this.failures = 0;
      return;
    }
    if (this.link.reconnecting) {
      // The client is reconnecting: publishing would only wait out its timeout.
      // Its reconnect re-arms the alarm at once.
      await this.backOff();
      return;
    }
    const outcomes = await this.publishRows(rows, FLUSH_TIMEOUT_MS);
    if (outcomes.some((o) => !o.ok)) {
      await this.backOff();
      return;
    }
    this.failures = 0;
    const [left] = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM audit_events").toArray();
    if ((left?.n ?? 0) > this.inFlight.size) await this.setAlarm(Date.now());
  }

  /** Publishes rows and deletes the acknowledged ones; the others stay for the alarm. */
  private async publishRows(rows: readonly Row[], timeoutMs: number): Promise<PublishOutcome[]> {
    for (const row of rows) this.inFlight.add(row.seq);
    let outcomes: PublishOutcome[];
    try {
      outcomes = await this.link.publish(
        rows.map((r) => r.event),
        timeoutMs,
      );
    } finally {
      for (const row of rows) this.inFlight.delete(row.seq);
    }
    let failed = 0;
    rows.forEach((row, i) => {
      if (outcomes[i]?.ok) this.sql.exec("DELETE FROM audit_events WHERE seq = ?", row.seq);
      else failed++;
    });
    this.publishedTotal += rows.length - failed;
    if (failed > 0) {
      this.publishFailuresTotal += failed;
      const first = outcomes.find((o) => !o.ok);
      this.logger.error("audit events not published; they stay buffered", {
        failed,
        error: first && !first.ok ? String(first.error) : undefined,
      });
    }
    return outcomes;
  }

  private insert(events: readonly OutgoingEvent[]): Row[] {
    const now = Date.now();
    return events.map((event) => {
      const [row] = this.sql
        .exec<{ seq: number }>(
          "INSERT INTO audit_events (event_id, subject, body, buffered_at) VALUES (?, ?, ?, ?) RETURNING seq",
          event.id,
          event.subject,
          toArrayBuffer(event.body),
          now,
        )
        .toArray();
      if (!row) throw new Error("audit buffer insert returned no row");
      return { seq: row.seq, event, bufferedAt: now };
    });
  }

  /** An alarm within BATCH_DELAY_MS, unless a backoff is in force (appends must not defeat it). */
  private async armSoon(): Promise<void> {
    if (this.failures > 0) {
      if (this.alarmAt === undefined) await this.backOff(false);
      return;
    }
    const target = Date.now() + BATCH_DELAY_MS;
    if (this.alarmAt === undefined || this.alarmAt > target) await this.setAlarm(target);
  }

  private async backOff(count = true): Promise<void> {
    if (count) this.failures++;
    const delay = Math.min(BACKOFF_MIN_MS * 2 ** Math.max(this.failures - 1, 0), BACKOFF_MAX_MS);
    await this.setAlarm(Date.now() + delay);
  }

  private async setAlarm(at: number): Promise<void> {
    this.alarmAt = at;
    await this.ctx.storage.setAlarm(at);
  }
}

function bufferedResult(row: Row): PublishResult {
  return {
    eventId: row.event.id,
    sequence: 0,
    duplicate: false,
    storedAt: row.bufferedAt,
    buffered: true,
  };
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
