/**
 * UpdatePolicy. The fields named in update_mask are merged:
 * - versioned fields (policy-definition.ts): when the merged definition's hash differs
 *   from the newest version's, it is compiled (before any transaction: OPA takes a while
 *   and a policy that does not compile must write nothing) and appended as a new DRAFT
 *   version; the active version never changes here (ActivatePolicyVersion does that);
 * - name, description, tags, metadata (the whole map): the policy row;
 * - status: the lifecycle (policy-lifecycle.ts), publishing or unpublishing after commit.
 * Every change bumps the revision and writes audit rows (apply-update.ts); an update that
 * changes nothing writes nothing. Reading (to compile) and the locked write are separate
 * transactions, so the write checks the revision it read and plans again if another
 * change came in between.
 */
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type {
  UpdatePolicyRequest,
  UpdatePolicyResponse,
} from "../../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import type { TenantPrincipal } from "../auth/principal.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { pointAfterCommit } from "./activation.js";
import { applyUpdate, type PlannedVersion } from "./apply-update.js";
import { ARCHIVE_REPAIR } from "./archive.js";
import { duplicateName } from "./create-policy.js";
import {
  definitionOf,
  fromStoredDefinition,
  mergeVersioned,
  sourceOf,
  VERSIONED_FIELDS,
} from "./policy-definition.js";
import { latestVersion, loadPolicy, requireOwnTenant, requirePolicyId } from "./policy-store.js";

const ATTEMPTS = 3;

interface Plan {
  revision: number;
  version: PlannedVersion | undefined;
}

async function plan(
  deps: FunctionsDeps,
  caller: TenantPrincipal,
  req: UpdatePolicyRequest,
  id: string,
  paths: ReadonlySet<string>,
): Promise<Plan> {
  const { row, latest } = await inTenant(deps.db, caller.tenantId, async (tx) => ({
    row: await loadPolicy(tx, id),
    latest: await latestVersion(tx, id),
  }));
  const input = req.policy;
  if (!input || !VERSIONED_FIELDS.some((f) => paths.has(f))) {
    return { revision: row.revision, version: undefined };
  }
  const merged = mergeVersioned(fromStoredDefinition(latest.definition).policy, input, paths);
  const definition = definitionOf(merged);
  if (definition.sha256 === latest.sha256) return { revision: row.revision, version: undefined };
  const compiled = await deps.compiler.compile(sourceOf(definition.policy));
  return { revision: row.revision, version: { number: latest.version + 1, definition, compiled } };
}

export async function updatePolicy(
  deps: FunctionsDeps,
  caller: TenantPrincipal,
  req: UpdatePolicyRequest,
): Promise<UpdatePolicyResponse> {
  const input = req.policy;
  if (!input) throw new FulcrumError("Invalid", "policy is required", { field: "policy" });
  const id = requirePolicyId(input.policyId, "policy.policy_id");
  requireOwnTenant(caller.tenantId, input.tenantId, "policy.tenant_id");
  const paths = new Set(req.updateMask?.paths ?? []);
  if (paths.size === 0) {
    throw new FulcrumError("Invalid", "update_mask: name at least one field", {
      field: "update_mask",
    });
  }

  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const planned = await plan(deps, caller, req, id, paths);
    const applied = await inTenant(
      deps.db,
      caller.tenantId,
      async (tx) => {
        const locked = await loadPolicy(tx, id, { lock: true });
        // Changed since the plan was made (its version number or definition may be stale).
        if (locked.revision !== planned.revision) return undefined;
        return applyUpdate(deps, tx, caller, req, locked, paths, planned.version);
      },
      duplicateName(input.name),
    );
    if (!applied) continue;
    if (applied.pointer && applied.archived) {
      await pointAfterCommit(deps, applied.pointer, `archiving policy ${id}`, ARCHIVE_REPAIR);
    } else if (applied.pointer) {
      const on = applied.pointer.version > 0;
      await pointAfterCommit(
        deps,
        applied.pointer,
        `${on ? "publishing" : "unpublishing"} policy ${id}`,
        `repeat UpdatePolicy with status ${on ? "ACTIVE" : "INACTIVE"} to finish it`,
      );
    }
    return applied.response;
  }
  throw new FulcrumError(
    "FailedPrecondition",
    `policy ${id} was changed by other calls while this update was prepared; retry`,
    { retry: true },
  );
}
