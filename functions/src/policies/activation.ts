/**
 * Switching which version of a policy the edge evaluates. Always three steps:
 *
 * 1. inside the transaction, with the policy row locked (`FOR UPDATE`, so concurrent
 *    activations of one policy serialize): `publisher.stage` stores the version's wasm and
 *    metadata (written once and never changed, so harmless if the transaction then
 *    fails: see docs/decisions.md on orphans), then the policy row (status, active
 *    version, its copy of the active definition), the activation history and the audit
 *    trail change;
 * 2. the transaction commits;
 * 3. `publisher.point` moves the pointer, carrying the policy's new revision, so of two
 *    activations racing to Redis the older can never win.
 *
 * If step 3 fails the database already says the version is active; the caller gets
 * Unavailable saying so, and repeating the same call re-stages and re-points (activating
 * the version that is already active changes nothing in the database: idempotent repair).
 */
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { policyActivations } from "../../../db/schema/index.js";
import { recordAudit } from "../audit/audit-trail.js";
import type { TenantPrincipal } from "../auth/principal.js";
import type { Tx } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import type { PointerUpdate } from "../publish/policy-publisher.js";
import { rowMirror } from "./new-version.js";
import { fromStoredDefinition } from "./policy-definition.js";
import {
  clockTimestamp,
  type PolicyRow,
  updatePolicyRow,
  type VersionWithWasm,
  versionHashes,
} from "./policy-store.js";
import { publishedVersion } from "./published-meta.js";

export interface ActivationOptions {
  kind: "activate" | "rollback";
  reason: string;
}

export interface Activation {
  policy: PolicyRow;
  /** What `point` must write after the commit. */
  pointer: PointerUpdate;
  /** False when the version already was the active one (nothing was written). */
  changed: boolean;
}

/**
 * Stores the version's wasm and metadata for the edge (step 1 above); returns the pointer
 * to it, carrying `policy`'s name (the name as of the write: a rename alone does not move
 * the pointer, the next activation carries it).
 */
export async function stageVersion(
  deps: Pick<FunctionsDeps, "publisher">,
  policy: PolicyRow,
  version: VersionWithWasm,
): Promise<PointerUpdate> {
  const { meta, wasm } = publishedVersion(policy, version);
  await deps.publisher.stage(meta, wasm);
  return {
    tenantId: policy.tenantId,
    policyId: policy.id,
    version: version.version,
    revision: policy.revision,
    sha256: meta.sha256,
    wasmSha256: meta.wasm_sha256,
    name: policy.name,
  };
}

/**
 * Makes `version` the active version of the locked `policy` (status ACTIVE), recording
 * the activation and its audit row. The caller commits, then calls {@link pointAfterCommit}.
 */
export async function activateLocked(
  deps: Pick<FunctionsDeps, "publisher">,
  tx: Tx,
  caller: TenantPrincipal,
  policy: PolicyRow,
  version: VersionWithWasm,
  options: ActivationOptions,
): Promise<Activation> {
  const staged = await stageVersion(deps, policy, version);
  if (policy.status === "ACTIVE" && policy.activeVersion === version.version) {
    return { policy, pointer: staged, changed: false };
  }
  const previous = await versionHashes(tx, policy.id, policy.activeVersion);
  await tx.insert(policyActivations).values({
    tenantId: policy.tenantId,
    policyId: policy.id,
    version: version.version,
    previousVersion: policy.activeVersion,
    kind: options.kind,
    activatedBy: caller.userId,
    reason: options.reason,
    occurredAt: clockTimestamp,
  });
  // The row's copy of the definition follows the active version (new-version.ts).
  const updated = await updatePolicyRow(tx, policy.id, {
    status: "ACTIVE",
    activeVersion: version.version,
    ...rowMirror(fromStoredDefinition(version.definition).policy),
  });
  await recordAudit(tx, policy.tenantId, caller, {
    action: options.kind === "activate" ? "policy.version_activated" : "policy.rolled_back",
    targetType: "policy",
    targetId: policy.id,
    details: {
      version: version.version,
      sha256: version.sha256,
      wasm_sha256: version.wasmSha256,
      previous_version: previous.version,
      previous_sha256: previous.sha256,
      previous_wasm_sha256: previous.wasm_sha256,
      ...(options.kind === "rollback" ? { reason: options.reason } : {}),
    },
  });
  return {
    policy: updated,
    pointer: { ...staged, revision: updated.revision, name: updated.name },
    changed: true,
  };
}

/** The pointer that takes a policy out of the edge's active set (INACTIVE, ARCHIVED). */
export function unpublishPointer(policy: PolicyRow): PointerUpdate {
  return {
    tenantId: policy.tenantId,
    policyId: policy.id,
    version: 0,
    revision: policy.revision,
    sha256: "",
    wasmSha256: "",
  };
}

/**
 * Step 3: moves the pointer after the commit. On failure the change is recorded but the
 * edge has not seen it: Unavailable, saying what is recorded and which call repairs it.
 */
export async function pointAfterCommit(
  deps: Pick<FunctionsDeps, "publisher" | "logger">,
  pointer: PointerUpdate,
  recorded: string,
  repair: string,
): Promise<void> {
  try {
    await deps.publisher.point(pointer);
  } catch (cause) {
    deps.logger.error("policy pointer not written after commit", {
      tenantId: pointer.tenantId,
      policyId: pointer.policyId,
      version: pointer.version,
      revision: pointer.revision,
      error: cause,
    });
    throw new FulcrumError(
      "Unavailable",
      `${recorded} is recorded but not yet published to the edge (the policy store is unavailable); ${repair}`,
      { cause, retry: true },
    );
  }
}
