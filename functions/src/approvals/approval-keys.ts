/**
 * The edge's approval keys (core/budget/budget-keys.ts), as functions writes them:
 * - a review: APPROVED sets the grant (`approvalGrant(t, hash)` = approval id, 1 h) that
 *   the edge consumes on the approved retry (GETDEL: once); REJECTED sets the rejection
 *   marker (JSON {approvalId, reviewer, note}, 1 h) so a retry is denied with the note;
 *   every review deletes the pending key — only while it still names this approval, so a
 *   newer approval of the same call is never dropped.
 * - reconciliation (`restoreApprovalKeys`): after a Redis flush, the keys PostgreSQL
 *   says should exist are written again (NX: a key present is never overwritten).
 */
import { and, eq, gt, isNotNull, isNull, or } from "drizzle-orm";
import { approvals } from "../../../db/schema/index.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import type { ApprovalRow } from "./approval-rows.js";

/** How long a grant or a rejection marker waits for the retry. */
export const APPROVAL_ANSWER_TTL_MS = 3_600_000;

export type ApprovalKeyDeps = Pick<FunctionsDeps, "db" | "redis" | "budgetKeys">;

/** KEYS: pending, answer. ARGV: approval id, answer value ('' = none), answer px. */
const REVIEW_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3]) end
return 1
`;

/**
 * KEYS: pending, answer, consumed. ARGV: approval id, answer value ('' = none), answer px.
 * A grant the edge already consumed (its id in the consumed key) is not written again.
 */
const RESTORE_ANSWER_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if redis.call('GET', KEYS[3]) == ARGV[1] then return 0 end
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3], 'NX') end
return 1
`;

export function rejectionMarker(row: Pick<ApprovalRow, "id" | "reviewer" | "reviewNote">) {
  return JSON.stringify({
    approvalId: row.id,
    reviewer: row.reviewer ?? "",
    note: row.reviewNote ?? "",
  });
}

/** The answer key and value a reviewed row stands for ('' value: none). */
function answerOf(deps: ApprovalKeyDeps, tenantId: string, row: ApprovalRow, hash: string) {
  const keys = deps.budgetKeys;
  if (row.status === "APPROVED") return { key: keys.approvalGrant(tenantId, hash), value: row.id };
  if (row.status === "REJECTED") {
    return { key: keys.approvalRejected(tenantId, hash), value: rejectionMarker(row) };
  }
  return { key: keys.approvalPending(tenantId, hash), value: "" };
}

/**
 * Writes the keys of a review just recorded in `row` (APPROVED, REJECTED or CANCELLED).
 * Throws when Redis fails (the caller's transaction then rolls back).
 */
export async function writeReviewKeys(
  deps: ApprovalKeyDeps,
  tenantId: string,
  row: ApprovalRow,
): Promise<void> {
  const hash = row.argumentsHash;
  if (!hash) return;
  const answer = answerOf(deps, tenantId, row, hash);
  await deps.redis.eval(
    REVIEW_SCRIPT,
    [deps.budgetKeys.approvalPending(tenantId, hash), answer.key],
    [row.id, answer.value, String(APPROVAL_ANSWER_TTL_MS)],
  );
}

/**
 * Reconciliation, per tenant: pending keys of approvals still pending (until their
 * expires_at), grants of approvals APPROVED in the last hour and not yet consumed,
 * rejection markers of the last hour; and the pending key of any reviewed approval
 * removed. Returns how many approvals were looked at.
 *
 * A grant the edge consumed a moment ago, before the event processor recorded
 * consumed_at, is not written again: the edge leaves the consumed key behind.
 */
export async function restoreApprovalKeys(
  deps: ApprovalKeyDeps,
  tenantId: string,
  now: Date,
): Promise<number> {
  const since = new Date(now.getTime() - APPROVAL_ANSWER_TTL_MS);
  const rows = await inTenant(deps.db, tenantId, (tx) =>
    tx
      .select()
      .from(approvals)
      .where(
        and(
          isNotNull(approvals.argumentsHash),
          or(
            and(eq(approvals.status, "PENDING"), gt(approvals.expiresAt, now)),
            and(
              eq(approvals.status, "APPROVED"),
              isNull(approvals.consumedAt),
              gt(approvals.reviewedAt, since),
            ),
            and(eq(approvals.status, "REJECTED"), gt(approvals.reviewedAt, since)),
            and(eq(approvals.status, "CANCELLED"), gt(approvals.expiresAt, now)),
          ),
        ),
      ),
  );
  const keys = deps.budgetKeys;
  for (const row of rows) {
    const hash = row.argumentsHash as string;
    if (row.status === "PENDING") {
      const px = row.expiresAt.getTime() - now.getTime();
      await deps.redis.set(keys.approvalPending(tenantId, hash), row.id, { px, nx: true });
      continue;
    }
    const answer = answerOf(deps, tenantId, row, hash);
    const px =
      (row.reviewedAt?.getTime() ?? now.getTime()) + APPROVAL_ANSWER_TTL_MS - now.getTime();
    await deps.redis.eval(
      RESTORE_ANSWER_SCRIPT,
      [keys.approvalPending(tenantId, hash), answer.key, keys.approvalConsumed(tenantId, hash)],
      [row.id, answer.value, String(Math.max(1, px))],
    );
  }
  return rows.length;
}
