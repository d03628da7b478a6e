/**
 * A policy's lifecycle, in one place: the statuses as stored and as proto enums, and
 * which status changes UpdatePolicy may make. DRAFT → ACTIVE happens only through
 * ActivatePolicyVersion (a version must be chosen); ACTIVE ↔ INACTIVE publish and
 * unpublish the active version; any status → ARCHIVED (DeletePolicy); ARCHIVED is
 * terminal (archived policies are not found at all).
 */
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { policyStatuses } from "../../../db/schema/index.js";
import { EnforcementLevel, PolicyStatus } from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";

export type StoredStatus = (typeof policyStatuses)[number];
export type StoredEnforcement = "AUDIT" | "WARN" | "BLOCK" | "TERMINATE";

const STATUS_TO_PROTO: Readonly<Record<StoredStatus, PolicyStatus>> = {
  DRAFT: PolicyStatus.DRAFT,
  ACTIVE: PolicyStatus.ACTIVE,
  INACTIVE: PolicyStatus.INACTIVE,
  ARCHIVED: PolicyStatus.ARCHIVED,
};

export const statusToProto = (status: StoredStatus): PolicyStatus => STATUS_TO_PROTO[status];

/** The stored name of a proto status; undefined for UNSPECIFIED. */
export function statusFromProto(status: PolicyStatus): StoredStatus | undefined {
  return status === PolicyStatus.UNSPECIFIED ? undefined : (PolicyStatus[status] as StoredStatus);
}

export function enforcementFromProto(level: EnforcementLevel): StoredEnforcement {
  return level === EnforcementLevel.UNSPECIFIED
    ? "BLOCK"
    : (EnforcementLevel[level] as StoredEnforcement);
}

/** What a status change asks of the publisher. */
export type Transition =
  /** Nothing changes (same status). `repair` re-writes the pointer as it should be. */
  | { kind: "none"; repair: "publish" | "unpublish" | undefined }
  /** INACTIVE → ACTIVE: publish the active version again. */
  | { kind: "publish" }
  /** ACTIVE → INACTIVE: take the policy out of the edge's active set. */
  | { kind: "unpublish" }
  /** → ARCHIVED, as DeletePolicy. */
  | { kind: "archive" };

/**
 * The transition from `from` to the requested proto status.
 *
 * @throws FulcrumError Invalid for UNSPECIFIED, FailedPrecondition for a change the
 * lifecycle does not allow (naming what to do instead).
 */
export function transition(
  from: StoredStatus,
  requested: PolicyStatus,
  activeVersion: number | null,
): Transition {
  const to = statusFromProto(requested);
  if (!to) {
    throw new FulcrumError(
      "Invalid",
      "status: name the status to set (DRAFT, ACTIVE, INACTIVE or ARCHIVED)",
      {
        field: "status",
      },
    );
  }
  if (to === "ARCHIVED") return { kind: "archive" };
  if (from === to) {
    return {
      kind: "none",
      repair: to === "ACTIVE" ? "publish" : to === "INACTIVE" ? "unpublish" : undefined,
    };
  }
  if (to === "ACTIVE") {
    if (activeVersion === null || from === "DRAFT") {
      throw new FulcrumError(
        "FailedPrecondition",
        "the policy has no active version: activate a version first (ActivatePolicyVersion)",
      );
    }
    return { kind: "publish" };
  }
  if (to === "INACTIVE") {
    if (from !== "ACTIVE") {
      throw new FulcrumError(
        "FailedPrecondition",
        `only an ACTIVE policy can be made INACTIVE (this one is ${from})`,
      );
    }
    return { kind: "unpublish" };
  }
  throw new FulcrumError(
    "FailedPrecondition",
    `a ${from} policy cannot go back to DRAFT; make it INACTIVE or archive it`,
  );
}
