/**
 * Archiving a policy (DeletePolicy, or UpdatePolicy to ARCHIVED): status ARCHIVED and
 * archived_at in the locked row, one audit row (naming the active version and its
 * hashes), and, when the policy was ever published,
 * the version-0 pointer that takes it out of the edge's active set after the commit.
 */
import { sql } from "drizzle-orm";
import { recordAudit } from "../audit/audit-trail.js";
import type { TenantPrincipal } from "../auth/principal.js";
import type { Tx } from "../db/tenant-transaction.js";
import type { PointerUpdate } from "../publish/policy-publisher.js";
import { unpublishPointer } from "./activation.js";
import { type PolicyRow, type PolicySet, updatePolicyRow, versionHashes } from "./policy-store.js";

/** How to finish an archive whose unpublishing failed (an archived policy is otherwise not found). */
export const ARCHIVE_REPAIR =
  "repeat DeletePolicy: for an archived policy it only takes the policy out of the edge's active set (and answers NotFound)";

/** Archives the locked policy, applying `set` too; the pointer to clear, if it was ever published. */
export async function archiveLocked(
  tx: Tx,
  caller: TenantPrincipal,
  locked: PolicyRow,
  set: PolicySet = {},
): Promise<{ policy: PolicyRow; pointer: PointerUpdate | undefined }> {
  const active = await versionHashes(tx, locked.id, locked.activeVersion);
  const policy = await updatePolicyRow(tx, locked.id, {
    ...set,
    status: "ARCHIVED",
    archivedAt: sql`now()`,
  });
  await recordAudit(tx, caller.tenantId, caller, {
    action: "policy.archived",
    targetType: "policy",
    targetId: locked.id,
    details: {
      previous_status: locked.status,
      active_version: active.version,
      sha256: active.sha256,
      wasm_sha256: active.wasm_sha256,
    },
  });
  return { policy, pointer: locked.activeVersion === null ? undefined : unpublishPointer(policy) };
}

/**
 * Whether archiving `policy` unpublishes it, so that the caller needs `policies.publish`
 * besides `policies.write`: it is ACTIVE, or it has an active version (INACTIVE).
 */
export const archivingUnpublishes = (policy: Pick<PolicyRow, "status" | "activeVersion">) =>
  policy.status === "ACTIVE" || policy.activeVersion !== null;
