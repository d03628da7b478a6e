import type { PolicyPointer } from "../../core/distribution/policy-keys.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import type { FunctionsStack } from "./functions-stack.js";
import { must, uniqueName, WARN_ALWAYS_REGO } from "./policy-fixtures.js";

/**
 * Helpers of the publishing tests (policy-publishing.test.ts: activation and rollback;
 * policy-lifecycle.test.ts: status changes, the active version, dry runs): a tenant with a
 * policy, and what the edge and the history see of it: the pointer and the active set in
 * Redis, the activation and audit rows in PostgreSQL. `stack` is read when a helper runs,
 * so the file's beforeAll may start it.
 */
export function publishingHelpers(stack: () => FunctionsStack) {
  async function tenantWithPolicy(rego = WARN_ALWAYS_REGO) {
    const t = await stack().createTenant();
    const policies = stack().client(PolicyService, t.adminKey);
    const name = uniqueName("pub");
    const created = await policies.createPolicy({ policy: { name, regoSource: rego } });
    return { ...t, policies, name, id: must(created.policy).policyId, v1: must(created.version) };
  }

  const pointer = (tenantId: string, policyId: string) =>
    stack().redis.get<PolicyPointer>(stack().keys.pointer(tenantId, policyId));
  const activeIn = async (tenantId: string, policyId: string) => {
    const value = await stack().redis.hget(stack().keys.activeSet(tenantId), policyId);
    return value === null ? undefined : Number(value);
  };
  const activationRows = async (policyId: string) =>
    (
      await stack().owner.query(
        "SELECT version, previous_version, kind, reason FROM policy_activations WHERE policy_id = $1 ORDER BY occurred_at",
        [policyId],
      )
    ).rows;
  const auditActions = async (policyId: string) =>
    (
      await stack().owner.query(
        "SELECT action, details FROM events WHERE target_id = $1 ORDER BY occurred_at, action",
        [policyId],
      )
    ).rows as { action: string; details: Record<string, unknown> }[];

  return { tenantWithPolicy, pointer, activeIn, activationRows, auditActions };
}
