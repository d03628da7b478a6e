/**
 * The write half of UpdatePolicy, inside the transaction with the policy row locked:
 * row fields, the new version (already compiled), the status transition, the audit rows,
 * and the pointer to write after the commit. Nothing here runs when nothing changed.
 */
import { create } from "@bufbuild/protobuf";
import {
  type UpdatePolicyRequest,
  type UpdatePolicyResponse,
  UpdatePolicyResponseSchema,
} from "../../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { recordAudit } from "../audit/audit-trail.js";
import type { TenantPrincipal } from "../auth/principal.js";
import type { Tx } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import type { CompiledPolicy } from "../policy-compiler/index.js";
import type { PointerUpdate } from "../publish/policy-publisher.js";
import { stageVersion, unpublishPointer } from "./activation.js";
import { archiveLocked } from "./archive.js";
import { insertVersion, rowMirror } from "./new-version.js";
import { type Definition, VERSIONED_FIELDS } from "./policy-definition.js";
import { type Transition, transition } from "./policy-lifecycle.js";
import { metadataOf, toPolicyProto, toVersionProto } from "./policy-rows.js";
import {
  loadVersion,
  type PolicyRow,
  type PolicySet,
  policyView,
  updatePolicyRow,
  versionHashes,
} from "./policy-store.js";

/** What the read half decided: the new version to append, if the definition changed. */
export interface PlannedVersion {
  number: number;
  definition: Definition;
  compiled: CompiledPolicy;
}

export interface Applied {
  response: UpdatePolicyResponse;
  pointer: PointerUpdate | undefined;
  archived: boolean;
}

const sameList = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

const sameMap = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>) =>
  Object.keys(a).length === Object.keys(b).length &&
  Object.entries(a).every(([k, v]) => Object.hasOwn(b, k) && b[k] === v);

/** The row fields the mask names and that differ, and their names for the audit row. */
function rowChanges(req: UpdatePolicyRequest, locked: PolicyRow, paths: ReadonlySet<string>) {
  const input = req.policy;
  const set: PolicySet = {};
  const changed: string[] = [];
  if (!input) return { set, changed };
  if (paths.has("name") && input.name !== locked.name) {
    set.name = input.name;
    changed.push("name");
  }
  if (paths.has("description") && input.description !== locked.description) {
    set.description = input.description;
    changed.push("description");
  }
  if (paths.has("tags") && !sameList(input.tags, locked.tags)) {
    set.tags = [...input.tags];
    changed.push("tags");
  }
  // The whole map is replaced (an update_mask names `metadata`, not its keys).
  if (paths.has("metadata") && !sameMap(input.metadata, metadataOf(locked))) {
    set.metadata = { ...input.metadata };
    changed.push("metadata");
  }
  return { set, changed };
}

/** The status change's effect on the row, and which pointer it needs after the commit. */
function pointerNeed(step: Transition | undefined): "publish" | "unpublish" | undefined {
  if (step?.kind === "publish" || step?.kind === "unpublish") return step.kind;
  return step?.kind === "none" ? step.repair : undefined;
}

export async function applyUpdate(
  deps: FunctionsDeps,
  tx: Tx,
  caller: TenantPrincipal,
  req: UpdatePolicyRequest,
  locked: PolicyRow,
  paths: ReadonlySet<string>,
  planned: PlannedVersion | undefined,
): Promise<Applied> {
  const id = locked.id;
  const { set, changed } = rowChanges(req, locked, paths);
  const version = planned
    ? await insertVersion(tx, {
        tenantId: caller.tenantId,
        policyId: id,
        version: planned.number,
        definition: planned.definition,
        compiled: planned.compiled,
        changeSummary: req.changeSummary,
        createdBy: caller.userId,
      })
    : undefined;
  if (planned) {
    // A draft is mirrored only while nothing was ever activated: the row describes the
    // active version otherwise (activation.ts writes it).
    if (locked.activeVersion === null) Object.assign(set, rowMirror(planned.definition.policy));
    changed.push(...VERSIONED_FIELDS.filter((f) => paths.has(f)));
  }
  const step =
    paths.has("status") && req.policy
      ? transition(locked.status, req.policy.status, locked.activeVersion)
      : undefined;

  let policy = locked;
  let pointer: PointerUpdate | undefined;
  if (step?.kind === "archive") {
    ({ policy, pointer } = await archiveLocked(tx, caller, locked, set));
  } else {
    if (step?.kind === "publish") set.status = "ACTIVE";
    if (step?.kind === "unpublish") set.status = "INACTIVE";
    if (Object.keys(set).length > 0) policy = await updatePolicyRow(tx, id, set);
    const need = pointerNeed(step);
    if (need === "publish" && policy.activeVersion !== null) {
      const active = await loadVersion(tx, id, policy.activeVersion);
      pointer = { ...(await stageVersion(deps, policy, active)), revision: policy.revision };
    }
    if (need === "unpublish") pointer = unpublishPointer(policy);
    if (step?.kind === "publish" || step?.kind === "unpublish") {
      const active = await versionHashes(tx, id, policy.activeVersion);
      await recordAudit(tx, caller.tenantId, caller, {
        action: "policy.status_changed",
        targetType: "policy",
        targetId: id,
        details: {
          from: locked.status,
          to: policy.status,
          active_version: active.version,
          sha256: active.sha256,
          wasm_sha256: active.wasm_sha256,
        },
      });
    }
  }
  if (changed.length > 0) {
    const hashes = version
      ? { version: version.version, sha256: version.sha256, wasm_sha256: version.wasmSha256 }
      : {};
    await recordAudit(tx, caller.tenantId, caller, {
      action: "policy.updated",
      targetType: "policy",
      targetId: id,
      details: { changed_fields: changed, ...hashes },
    });
  }
  return {
    pointer,
    archived: step?.kind === "archive",
    response: create(UpdatePolicyResponseSchema, {
      policy: toPolicyProto(policy, await policyView(tx, policy)),
      ...(version ? { version: toVersionProto(policy, version, undefined) } : {}),
    }),
  };
}
