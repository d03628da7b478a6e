/**
 * The notifier's PostgreSQL side, every statement under the event's tenant (`withTenant`,
 * so row-level security applies): which webhooks want an event, and the one
 * `webhook_deliveries` row per (webhook, event) that records every attempt.
 *
 * An attempt is *claimed* before it is made: the claim moves `next_attempt_at` forward by
 * a lease and succeeds only for a PENDING row whose time has come. Two notifiers (or a
 * redelivery racing a slow attempt) can therefore never POST the same delivery at once,
 * and a delivered or failed row is never attempted again, however often its event comes
 * back.
 */
import { sql } from "drizzle-orm";
import type { Db } from "../../../db/client.js";
import { withTenant } from "../../../db/tenant-context.js";

export interface WebhookTarget {
  id: string;
  url: string;
  secret: string;
  eventTypes: string[];
}

export type Claim =
  | { kind: "claimed"; deliveryId: string; attempts: number }
  /** Already DELIVERED or FAILED: nothing more to do for this webhook. */
  | { kind: "done" }
  /** PENDING, but its next attempt is not due yet (or another attempt holds the lease). */
  | { kind: "later"; inMs: number };

export interface AttemptRecord {
  ok: boolean;
  statusCode: number;
  error: string | undefined;
}

export interface NotifierStore {
  enabledWebhooks(tenantId: string): Promise<WebhookTarget[]>;
  claim(
    tenantId: string,
    webhookId: string,
    event: { id: string; type: string },
    leaseMs: number,
  ): Promise<Claim>;
  /**
   * Records one attempt. A failure schedules the next one after `retryInMs`, or marks
   * the delivery FAILED when `retryInMs` is undefined (no attempts left).
   */
  record(
    tenantId: string,
    deliveryId: string,
    attempt: AttemptRecord,
    retryInMs: number | undefined,
  ): Promise<void>;
}

const MAX_ERROR_CHARS = 500;

export function notifierStore(db: Db): NotifierStore {
  return {
    async enabledWebhooks(tenantId) {
      const { rows } = await withTenant(db, tenantId, (tx) =>
        tx.execute<{ id: string; url: string; secret: string; event_types: string[] }>(sql`
          select id, url, secret, event_types from webhooks
          where enabled order by created_at, id`),
      );
      return rows.map((r) => ({
        id: r.id,
        url: r.url,
        secret: r.secret,
        eventTypes: r.event_types,
      }));
    },

    async claim(tenantId, webhookId, event, leaseMs) {
      return withTenant(db, tenantId, async (tx) => {
        await tx.execute(sql`
          insert into webhook_deliveries (tenant_id, webhook_id, event_id, event_type)
          values (${tenantId}, ${webhookId}, ${event.id}, ${event.type})
          on conflict (webhook_id, event_id) do nothing`);
        const claimed = await tx.execute<{ id: string; attempts: number }>(sql`
          update webhook_deliveries
          set next_attempt_at = now() + ${leaseMs} * interval '1 millisecond', updated_at = now()
          where webhook_id = ${webhookId} and event_id = ${event.id} and status = 'PENDING'
            and (next_attempt_at is null or next_attempt_at <= now())
          returning id, attempts`);
        const row = claimed.rows[0];
        if (row) return { kind: "claimed", deliveryId: row.id, attempts: Number(row.attempts) };
        const current = await tx.execute<{ status: string; wait_ms: number | null }>(sql`
          select status,
                 ceil(extract(epoch from (next_attempt_at - now())) * 1000)::float8 as wait_ms
          from webhook_deliveries where webhook_id = ${webhookId} and event_id = ${event.id}`);
        const state = current.rows[0];
        // The webhook was deleted in between (the row went with it): nothing to deliver.
        if (state?.status !== "PENDING") return { kind: "done" };
        return { kind: "later", inMs: Math.max(0, Number(state.wait_ms ?? 0)) };
      });
    },

    async record(tenantId, deliveryId, attempt, retryInMs) {
      const error = attempt.error?.slice(0, MAX_ERROR_CHARS) ?? null;
      await withTenant(db, tenantId, (tx) =>
        attempt.ok
          ? tx.execute(sql`
              update webhook_deliveries
              set status = 'DELIVERED', attempts = attempts + 1,
                  last_status_code = ${attempt.statusCode}, last_error = null,
                  next_attempt_at = null, delivered_at = now(), updated_at = now()
              where id = ${deliveryId}`)
          : tx.execute(sql`
              update webhook_deliveries
              set status = ${retryInMs === undefined ? "FAILED" : "PENDING"},
                  attempts = attempts + 1,
                  last_status_code = ${attempt.statusCode}, last_error = ${error},
                  next_attempt_at = ${
                    retryInMs === undefined
                      ? null
                      : sql`now() + ${retryInMs} * interval '1 millisecond'`
                  },
                  updated_at = now()
              where id = ${deliveryId}`),
      );
    },
  };
}
