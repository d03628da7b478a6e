/**
 * An `approvals` row and the Approval message the API answers with. Rows are inserted by
 * the event processor from APPROVAL_REQUESTED events (id = the edge's approval id) and
 * changed by UpdateApproval and reconciliation.
 *
 * A PENDING row past its expires_at reads as EXPIRED everywhere (Get, List and its
 * status filter) before reconciliation has marked it: the edge's pending key has
 * expired with it, so it can no longer be approved, and showing it PENDING would invite
 * a review that must fail.
 */

import { create, fromJson, type JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { eq } from "drizzle-orm";
import { notFound } from "../../../core/errors/fulcrum-error.js";
import { isUuid } from "../../../core/ids/uuid.js";
import { decisionIdOf } from "../../../core/ids/uuidv7.js";
import { approvals } from "../../../db/schema/index.js";
import {
  type Approval,
  ApprovalSchema,
  ApprovalStatus,
} from "../../../proto/gen/fulcrum/policy/v1/approval_pb.js";
import {
  type EvaluationContext,
  EvaluationContextSchema,
} from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { Tx } from "../db/tenant-transaction.js";

export type ApprovalRow = typeof approvals.$inferSelect;
export type ApprovalStatusName = ApprovalRow["status"];

export const approvalNotFound = (id: string) =>
  notFound(
    `approval ${id} not found in this tenant (a new approval is recorded a moment after the decision that requested it; poll again shortly)`,
  );

export async function loadApproval(
  tx: Tx,
  id: string,
  options: { lock?: boolean } = {},
): Promise<ApprovalRow> {
  if (!isUuid(id)) throw approvalNotFound(id);
  const query = tx.select().from(approvals).where(eq(approvals.id, id.toLowerCase()));
  const [row] = options.lock ? await query.for("update") : await query;
  if (!row) throw approvalNotFound(id);
  return row;
}

/** The status as callers see it: PENDING past expires_at is EXPIRED. */
export function effectiveStatus(row: ApprovalRow, now: Date): ApprovalStatusName {
  return row.status === "PENDING" && row.expiresAt.getTime() <= now.getTime()
    ? "EXPIRED"
    : row.status;
}

/** The stored context as an EvaluationContext; anything unreadable is left out. */
function contextOf(json: unknown): EvaluationContext | undefined {
  if (!json || typeof json !== "object" || Object.keys(json).length === 0) return undefined;
  try {
    return fromJson(EvaluationContextSchema, json as JsonValue, { ignoreUnknownFields: true });
  } catch {
    return undefined;
  }
}

export function toApprovalProto(row: ApprovalRow, now: Date): Approval {
  const context = contextOf(row.context);
  return create(ApprovalSchema, {
    approvalId: row.id,
    tenantId: row.tenantId,
    policyId: row.policyId ?? "",
    ruleId: row.ruleId ?? "",
    decisionId: decisionIdOf(row.decisionId),
    workflowId: row.workflowId ?? "",
    envelopeId: row.envelopeId ?? "",
    action: row.actionName,
    ...(context ? { context } : {}),
    status: ApprovalStatus[effectiveStatus(row, now)],
    reasons: row.reasons.length > 0 ? [...row.reasons] : row.reason ? [row.reason] : [],
    requestedBy: row.requestedBy ?? "",
    reviewer: row.reviewer ?? "",
    reviewNote: row.reviewNote ?? "",
    createdAt: timestampFromDate(row.createdAt),
    ...(row.reviewedAt ? { reviewedAt: timestampFromDate(row.reviewedAt) } : {}),
    expiresAt: timestampFromDate(row.expiresAt),
    argumentsHash: row.argumentsHash ?? "",
    ...(row.consumedAt ? { consumedAt: timestampFromDate(row.consumedAt) } : {}),
  });
}
