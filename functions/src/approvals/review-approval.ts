/**
 * UpdateApproval: a reviewer's verdict on a PENDING approval that has not expired.
 *
 * Under the row lock: refused when already reviewed (FailedPrecondition naming the
 * verdict) or expired (FailedPrecondition: the caller must retry the governed call to
 * request a new approval); else the row is updated, the event staged (APPROVAL_GRANTED,
 * APPROVAL_REJECTED; CANCELLED is a CUSTOM `approval.cancelled`), and the edge's keys
 * written (approval-keys.ts) — inside the transaction, as its last step, so a Redis
 * failure fails the call with nothing recorded and the reviewer can simply retry.
 *
 * `reviewer` defaults to the caller's user id; `reviewer_id` is always the caller's user
 * (who acted, whatever name the request gives).
 */

import type { JsonObject } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { eq, sql } from "drizzle-orm";
import { newEvent } from "../../../core/audit/event-codec.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { decisionIdOf, uuidv7 } from "../../../core/ids/uuidv7.js";
import { approvals } from "../../../db/schema/index.js";
import { type Event, EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import {
  type Approval,
  ApprovalStatus,
  type UpdateApprovalRequest,
} from "../../../proto/gen/fulcrum/policy/v1/approval_pb.js";
import { Decision } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { TenantPrincipal } from "../auth/principal.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { MANAGEMENT_EVENT_SOURCE, stageManagementEvent } from "../events/management-events.js";
import { type ApprovalKeyDeps, writeReviewKeys } from "./approval-keys.js";
import { type ApprovalRow, loadApproval, toApprovalProto } from "./approval-rows.js";

type Verdict = "APPROVED" | "REJECTED" | "CANCELLED";

function verdictOf(status: ApprovalStatus): Verdict {
  if (status === ApprovalStatus.APPROVED) return "APPROVED";
  if (status === ApprovalStatus.REJECTED) return "REJECTED";
  if (status === ApprovalStatus.CANCELLED) return "CANCELLED";
  throw new FulcrumError("Invalid", "status must be APPROVED, REJECTED or CANCELLED", {
    field: "status",
  });
}

/** The audit event of a review (and of an expiry, for reconciliation). */
export function approvalEvent(
  row: ApprovalRow,
  type: EventType,
  customType: string,
  at: Date,
  extra: JsonObject = {},
): Event {
  return newEvent({
    eventId: uuidv7(),
    tenantId: row.tenantId,
    // Event.execution_id is required: the envelope when there is one, else the approval.
    executionId: row.envelopeId ?? row.id,
    envelopeId: row.envelopeId ?? "",
    workflowId: row.workflowId ?? "",
    eventType: type,
    customType,
    timestamp: timestampFromDate(at),
    source: MANAGEMENT_EVENT_SOURCE,
    payload: {
      approval_id: row.id,
      arguments_hash: row.argumentsHash ?? "",
      status: row.status,
      reviewer: row.reviewer ?? "",
      review_note: row.reviewNote ?? "",
      action: row.actionName,
      ...extra,
    },
    ...(row.policyId
      ? {
          policyResult: {
            policyId: row.policyId,
            ruleId: row.ruleId ?? "",
            decisionId: decisionIdOf(row.decisionId),
            decision: Decision.REQUIRE_APPROVAL,
          },
        }
      : {}),
  });
}

function alreadyDone(row: ApprovalRow, now: Date): FulcrumError | undefined {
  // Expired (whether reconciliation has marked the row yet or not): nobody reviewed it, so
  // the caller needs the way forward, not "already reviewed".
  if (
    row.status === "EXPIRED" ||
    (row.status === "PENDING" && row.expiresAt.getTime() <= now.getTime())
  ) {
    return new FulcrumError(
      "FailedPrecondition",
      `approval ${row.id} expired at ${row.expiresAt.toISOString()}; retry the call to request a new approval`,
      { field: "approval_id" },
    );
  }
  if (row.status !== "PENDING") {
    const by = row.reviewer ? ` by ${row.reviewer}` : "";
    const when = (row.reviewedAt ?? row.updatedAt).toISOString();
    return new FulcrumError(
      "FailedPrecondition",
      `approval ${row.id} is already ${row.status}${by} (at ${when}); a reviewed approval cannot be changed`,
      { field: "approval_id" },
    );
  }
  return undefined;
}

export async function reviewApproval(
  deps: ApprovalKeyDeps & Pick<FunctionsDeps, "now">,
  caller: TenantPrincipal,
  req: UpdateApprovalRequest,
): Promise<Approval> {
  const verdict = verdictOf(req.status);
  const row = await inTenant(deps.db, caller.tenantId, async (tx) => {
    const current = await loadApproval(tx, req.approvalId, { lock: true });
    const refusal = alreadyDone(current, deps.now());
    if (refusal) throw refusal;
    const [updated] = await tx
      .update(approvals)
      .set({
        status: verdict,
        reviewer: req.reviewer || caller.userId,
        reviewerId: caller.userId,
        reviewNote: req.reviewNote || null,
        reviewedAt: verdict === "CANCELLED" ? null : sql`now()`,
        updatedAt: sql`now()`,
      })
      .where(eq(approvals.id, current.id))
      .returning();
    if (!updated) throw new FulcrumError("Internal", `approval ${current.id} vanished`);
    const [type, custom] =
      verdict === "APPROVED"
        ? [EventType.APPROVAL_GRANTED, ""]
        : verdict === "REJECTED"
          ? [EventType.APPROVAL_REJECTED, ""]
          : [EventType.CUSTOM, "approval.cancelled"];
    stageManagementEvent(
      approvalEvent(updated, type, custom, updated.updatedAt, { actor_key_id: caller.keyId }),
    );
    try {
      await writeReviewKeys(deps, caller.tenantId, updated);
    } catch (error) {
      throw new FulcrumError(
        "Unavailable",
        `the approval store (Redis) is unavailable; approval ${current.id} was not changed, retry the call`,
        { cause: error, retry: true },
      );
    }
    return updated;
  });
  return toApprovalProto(row, deps.now());
}
