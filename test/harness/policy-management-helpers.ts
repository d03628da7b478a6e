import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import type { FunctionsStack } from "./functions-stack.js";

/**
 * Helpers of PolicyService's management tests (policy-management.test.ts: create, update
 * and versions; policy-get-list-delete.test.ts: get, ids, delete and list): a new tenant
 * with a PolicyService client as its admin, and row counts and audit rows read through the
 * owner connection. `stack` is read when a helper runs, so the file's beforeAll may start it.
 */
export function policyManagementHelpers(stack: () => FunctionsStack) {
  async function tenant() {
    const t = await stack().createTenant();
    return { ...t, policies: stack().client(PolicyService, t.adminKey) };
  }

  async function count(sql: string, params: unknown[]): Promise<number> {
    const { rows } = await stack().owner.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${sql}`,
      params,
    );
    return (rows[0] as { n: number }).n;
  }

  async function auditActions(
    tenantId: string,
    policyId: string,
  ): Promise<{ action: string; details: Record<string, unknown> }[]> {
    const { rows } = await stack().owner.query(
      "SELECT action, details FROM events WHERE tenant_id = $1 AND target_id = $2 ORDER BY occurred_at, action",
      [tenantId, policyId],
    );
    return rows as { action: string; details: Record<string, unknown> }[];
  }

  return { tenant, count, auditActions };
}
