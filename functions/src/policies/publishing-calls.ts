/**
 * The calls that change what the edge evaluates: ActivatePolicyVersion, RollbackPolicy
 * and DeletePolicy. Each is one transaction on the locked policy row, followed by the
 * pointer write after the commit (activation.ts explains the order).
 */
import { create } from "@bufbuild/protobuf";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import {
  type ActivatePolicyVersionRequest,
  type ActivatePolicyVersionResponse,
  ActivatePolicyVersionResponseSchema,
  type RollbackPolicyRequest,
  type RollbackPolicyResponse,
  RollbackPolicyResponseSchema,
} from "../../../proto/gen/fulcrum/policy/v1/policy_version_pb.js";
import { requirePermission } from "../auth/permissions.js";
import type { TenantPrincipal } from "../auth/principal.js";
import { inTenant, type Tx } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import {
  type ActivationOptions,
  activateLocked,
  pointAfterCommit,
  unpublishPointer,
} from "./activation.js";
import { ARCHIVE_REPAIR, archiveLocked, archivingUnpublishes } from "./archive.js";
import { toPolicyProto, toVersionProto } from "./policy-rows.js";
import {
  activationsByVersion,
  loadPolicy,
  loadVersion,
  type PolicyRow,
  policyNotFound,
  policyView,
  previousActiveVersion,
  requirePolicyId,
} from "./policy-store.js";

type Chooser = (tx: Tx, locked: PolicyRow) => Promise<number>;

/** Locks, chooses the version, activates it, answers with the policy and the version; then points. */
async function activate(
  deps: FunctionsDeps,
  caller: TenantPrincipal,
  id: string,
  choose: Chooser,
  options: ActivationOptions,
) {
  const result = await inTenant(deps.db, caller.tenantId, async (tx) => {
    const locked = await loadPolicy(tx, id, { lock: true });
    const number = await choose(tx, locked);
    const version = await loadVersion(tx, id, number);
    const activation = await activateLocked(deps, tx, caller, locked, version, options);
    const activations = await activationsByVersion(tx, id);
    const { policy } = activation;
    return {
      activation,
      policy: toPolicyProto(policy, await policyView(tx, policy)),
      version: toVersionProto(policy, version, activations.get(number)),
    };
  });
  const v = result.activation.pointer.version;
  await pointAfterCommit(
    deps,
    result.activation.pointer,
    `the activation of version ${v} of policy ${id}`,
    `repeat ActivatePolicyVersion for version ${v} to publish it`,
  );
  return { policy: result.policy, version: result.version };
}

export async function activatePolicyVersion(
  deps: FunctionsDeps,
  caller: TenantPrincipal,
  req: ActivatePolicyVersionRequest,
): Promise<ActivatePolicyVersionResponse> {
  const id = requirePolicyId(req.policyId);
  const answer = await activate(
    deps,
    caller,
    id,
    async (_tx, locked) => {
      const current = locked.activeVersion ?? 0;
      if (req.expectedActiveVersion !== 0 && req.expectedActiveVersion !== current) {
        throw new FulcrumError(
          "FailedPrecondition",
          `expected_active_version is ${req.expectedActiveVersion} but the active version of policy ${id} is ${current}`,
          { field: "expected_active_version" },
        );
      }
      return req.version;
    },
    { kind: "activate", reason: "" },
  );
  return create(ActivatePolicyVersionResponseSchema, answer);
}

export async function rollbackPolicy(
  deps: FunctionsDeps,
  caller: TenantPrincipal,
  req: RollbackPolicyRequest,
): Promise<RollbackPolicyResponse> {
  const id = requirePolicyId(req.policyId);
  const answer = await activate(
    deps,
    caller,
    id,
    async (tx, locked) => {
      if (req.targetVersion !== 0) return req.targetVersion;
      const previous = await previousActiveVersion(tx, id, locked.activeVersion);
      if (previous === undefined) {
        throw new FulcrumError(
          "FailedPrecondition",
          `no earlier version of policy ${id} was active`,
        );
      }
      return previous;
    },
    { kind: "rollback", reason: req.reason },
  );
  return create(RollbackPolicyResponseSchema, answer);
}

/**
 * Archives the policy. Archiving a policy that is or was published (it has an active
 * version) unpublishes it, so it needs `policies.publish` as well, like UpdatePolicy to
 * ARCHIVED. An already archived policy is NotFound; its pointer is cleared again first,
 * which is how an archive whose unpublishing failed is finished.
 */
export async function deletePolicy(
  deps: FunctionsDeps,
  caller: TenantPrincipal,
  policyId: string,
): Promise<void> {
  const id = requirePolicyId(policyId);
  const result = await inTenant(deps.db, caller.tenantId, async (tx) => {
    const locked = await loadPolicy(tx, id, { lock: true, includeArchived: true });
    if (locked.status === "ARCHIVED") {
      return {
        archivedBefore: true,
        pointer: locked.activeVersion === null ? undefined : unpublishPointer(locked),
      };
    }
    if (archivingUnpublishes(locked)) requirePermission(caller, "policies.publish");
    return { archivedBefore: false, ...(await archiveLocked(tx, caller, locked)) };
  });
  if (result.pointer)
    await pointAfterCommit(deps, result.pointer, `archiving policy ${id}`, ARCHIVE_REPAIR);
  if (result.archivedBefore) throw policyNotFound(id);
}
