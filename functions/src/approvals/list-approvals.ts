/**
 * ListApprovals: the tenant's approvals newest first (keyset paging on created_at, id;
 * tokens bound to the filters), filtered by status, policy, workflow and envelope.
 * The status filter uses the status callers see (approval-rows.ts): PENDING means
 * pending and not yet expired, EXPIRED includes pending rows past expires_at.
 */
import { and, desc, eq, gt, lte, or, type SQL } from "drizzle-orm";
import { approvals } from "../../../db/schema/index.js";
import {
  type Approval,
  ApprovalStatus,
  type ListApprovalsRequest,
} from "../../../proto/gen/fulcrum/policy/v1/approval_pb.js";
import type { Tx } from "../db/tenant-transaction.js";
import { afterCursor, cursorColumn, keysetPage } from "../pagination/page-token.js";
import { requireUuid } from "../tenancy/ids.js";
import { toApprovalProto } from "./approval-rows.js";

function statusFilter(status: ApprovalStatus, now: Date): SQL | undefined {
  switch (status) {
    case ApprovalStatus.UNSPECIFIED:
      return undefined;
    case ApprovalStatus.PENDING:
      return and(eq(approvals.status, "PENDING"), gt(approvals.expiresAt, now));
    case ApprovalStatus.EXPIRED:
      return or(
        eq(approvals.status, "EXPIRED"),
        and(eq(approvals.status, "PENDING"), lte(approvals.expiresAt, now)),
      );
    default: {
      const name = ApprovalStatus[status] as "APPROVED" | "REJECTED" | "CANCELLED";
      return eq(approvals.status, name);
    }
  }
}

export async function listApprovals(
  tx: Tx,
  req: ListApprovalsRequest,
  now: Date,
): Promise<{ approvals: Approval[]; nextPageToken: string }> {
  const filters: (SQL | undefined)[] = [statusFilter(req.status, now)];
  const scope: Record<string, string | number> = { status: req.status };
  if (req.policyId) {
    filters.push(eq(approvals.policyId, requireUuid("policy_id", req.policyId)));
    scope.policy = req.policyId.toLowerCase();
  }
  if (req.workflowId) {
    filters.push(eq(approvals.workflowId, req.workflowId));
    scope.workflow = req.workflowId;
  }
  if (req.envelopeId) {
    filters.push(eq(approvals.envelopeId, requireUuid("envelope_id", req.envelopeId)));
    scope.envelope = req.envelopeId.toLowerCase();
  }
  const page = await keysetPage(`approvals?${JSON.stringify(scope)}`, req, (cursor, limit) =>
    tx
      .select({ row: approvals, cursor: cursorColumn(approvals.createdAt), id: approvals.id })
      .from(approvals)
      .where(and(...filters, afterCursor(approvals.createdAt, approvals.id, cursor, "desc")))
      .orderBy(desc(approvals.createdAt), desc(approvals.id))
      .limit(limit),
  );
  return {
    approvals: page.rows.map((r) => toApprovalProto(r.row, now)),
    nextPageToken: page.nextPageToken,
  };
}
