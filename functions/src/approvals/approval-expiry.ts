/**
 * Reconciliation, per tenant: PENDING approvals past expires_at become EXPIRED, and each
 * emits APPROVAL_EXPIRED. Callers see such approvals as EXPIRED already
 * (approval-rows.ts); this makes the row say so, and tells subscribers. Runs outside a
 * Connect call, so the events are published here, after the commit (no call outbox).
 */
import { and, eq, lte, sql } from "drizzle-orm";
import { approvals } from "../../../db/schema/index.js";
import { EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { publishAll } from "../events/management-events.js";
import { approvalEvent } from "./review-approval.js";

export type ApprovalExpiryDeps = Pick<
  FunctionsDeps,
  "db" | "eventPublisher" | "metrics" | "logger"
>;

/** Returns how many approvals expired. */
export async function expireApprovals(
  deps: ApprovalExpiryDeps,
  tenantId: string,
  now: Date,
): Promise<number> {
  const expired = await inTenant(deps.db, tenantId, (tx) =>
    tx
      .update(approvals)
      .set({ status: "EXPIRED", updatedAt: sql`now()` })
      .where(and(eq(approvals.status, "PENDING"), lte(approvals.expiresAt, now)))
      .returning(),
  );
  const events = expired.map((row) =>
    approvalEvent(row, EventType.APPROVAL_EXPIRED, "", row.expiresAt, {
      expires_at: row.expiresAt.toISOString(),
    }),
  );
  await publishAll(deps.eventPublisher, deps.metrics, deps.logger, events);
  return expired.length;
}
