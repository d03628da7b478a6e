/**
 * From stored rows to the proto messages the API answers with. A Policy shows the row's
 * own fields (name, description, tags, metadata, status, active version, timestamps) and the
 * definition of its active version when it has one (what the edge enforces; a newer draft
 * shows only as `latest_version` > `active_version`), else of its newest; a PolicyVersion shows that version's definition and
 * a status derived from the policy and the activation history (versions themselves are
 * immutable, so their status is never stored).
 */
import { clone, create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Policy, PolicySchema } from "../../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import {
  type PolicyVersion,
  PolicyVersionSchema,
  PolicyVersionStatus,
} from "../../../proto/gen/fulcrum/policy/v1/policy_version_pb.js";
import { fromStoredDefinition } from "./policy-definition.js";
import { statusToProto } from "./policy-lifecycle.js";
import type { ActivationInfo, PolicyRow, PolicyView, VersionRow } from "./policy-store.js";

/** The policy as GetPolicy answers it: the row's fields and the definition `view` names. */
export function toPolicyProto(row: PolicyRow, view: PolicyView): Policy {
  const policy = clone(PolicySchema, fromStoredDefinition(view.definition).policy);
  policy.policyId = row.id;
  policy.tenantId = row.tenantId;
  policy.name = row.name;
  policy.description = row.description;
  policy.tags = [...row.tags];
  policy.status = statusToProto(row.status);
  policy.activeVersion = row.activeVersion ?? 0;
  policy.latestVersion = view.latestVersion;
  policy.createdBy = row.createdBy ?? "";
  policy.createdAt = timestampFromDate(row.createdAt);
  policy.updatedAt = timestampFromDate(row.updatedAt);
  policy.metadata = metadataOf(row);
  return policy;
}

/**
 * A policy's metadata map (policies.metadata: not versioned, like name and tags). Only
 * string values are ever written; anything else a hand-edited row holds is left out
 * rather than failing the read.
 */
export function metadataOf(row: Pick<PolicyRow, "metadata">): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(row.metadata ?? {})) {
    if (typeof value === "string") out[key] = value;
  }
  return out;
}

/** A version's status: see PolicyVersionStatus. */
export function versionStatus(
  policy: Pick<PolicyRow, "status" | "activeVersion">,
  version: number,
  everActivated: boolean,
): PolicyVersionStatus {
  if (policy.status === "ARCHIVED") return PolicyVersionStatus.ARCHIVED;
  if (policy.status === "ACTIVE" && policy.activeVersion === version)
    return PolicyVersionStatus.ACTIVE;
  return everActivated ? PolicyVersionStatus.SUPERSEDED : PolicyVersionStatus.DRAFT;
}

export function toVersionProto(
  policy: PolicyRow,
  row: VersionRow,
  activation: ActivationInfo | undefined,
): PolicyVersion {
  const definition = clone(PolicySchema, fromStoredDefinition(row.definition).policy);
  definition.policyId = policy.id;
  definition.tenantId = policy.tenantId;
  definition.name = policy.name;
  return create(PolicyVersionSchema, {
    policyId: policy.id,
    version: row.version,
    sha256: row.sha256,
    status: versionStatus(policy, row.version, activation !== undefined),
    policy: definition,
    createdBy: row.createdBy ?? "",
    createdAt: timestampFromDate(row.createdAt),
    changeSummary: row.changeSummary,
    compiledRego: row.regoSource,
    wasmSha256: row.wasmSha256 ?? "",
    activatedBy: activation?.activatedBy ?? "",
    ...(activation ? { activatedAt: timestampFromDate(activation.activatedAt) } : {}),
  });
}
