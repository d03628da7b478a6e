/**
 * Writes governance records to PostgreSQL `events`, and approvals requested or consumed
 * to `approvals` (approval-change.ts): one transaction per tenant through `withTenant`,
 * so row-level security checks every row against its own tenant. A record
 * PostgreSQL refuses (its tenant does not exist, a value breaks a check) is returned as
 * skipped rather than thrown, so it cannot hold the stream back; anything else (the
 * database is unreachable) throws and the batch is retried.
 */

import { sql } from "drizzle-orm";
import type { GovernanceRecord } from "../../../core/audit/governance-record.js";
import type { Db, Schema } from "../../../db/client.js";
import { events } from "../../../db/schema/events.js";
import { type TenantTx, withTenant } from "../../../db/tenant-context.js";
import type { ApprovalChange } from "./approval-change.js";
import { isPostgresRejection, sqlState } from "./failures.js";

const TENANT_CONCURRENCY = 4;

/** One row to write: an `events` record, or a change to `approvals`. */
export type GovernanceWrite =
  | { kind: "record"; record: GovernanceRecord }
  | { kind: "approval"; change: ApprovalChange };

export interface GovernanceWriteResult {
  /** New `events` rows. */
  written: number;
  /** Approvals inserted or marked consumed. */
  approvals: number;
  /** Writes PostgreSQL refused, by event id. */
  skipped: { id: string; reason: string }[];
}

export function governanceWriter(db: Db) {
  /** Every write of one tenant in one transaction; returns [events rows, approval rows]. */
  const apply = (tenantId: string, writes: GovernanceWrite[]) =>
    withTenant(db, tenantId, async (tx) => {
      let rows = 0;
      let approvalRows = 0;
      const records = writes.flatMap((w) => (w.kind === "record" ? [w.record] : []));
      if (records.length > 0) {
        rows = (
          await tx
            .insert(events)
            .values(records)
            .onConflictDoNothing({ target: events.id })
            .returning({ id: events.id })
        ).length;
      }
      for (const w of writes) {
        if (w.kind === "approval") approvalRows += await applyApprovalChange(tx, w.change);
      }
      return [rows, approvalRows] as const;
    });

  return async (writes: GovernanceWrite[]): Promise<GovernanceWriteResult> => {
    const byTenant = new Map<string, Map<string, GovernanceWrite>>();
    for (const write of writes) {
      const tenantId = write.kind === "record" ? write.record.tenantId : write.change.tenantId;
      const group = byTenant.get(tenantId) ?? new Map<string, GovernanceWrite>();
      byTenant.set(tenantId, group);
      group.set(`${write.kind}:${idOf(write)}`, write); // a redelivered duplicate in the same batch
    }
    const result: GovernanceWriteResult = { written: 0, approvals: 0, skipped: [] };
    const count = ([rows, approvalRows]: readonly [number, number]) => {
      result.written += rows;
      result.approvals += approvalRows;
    };
    const writeTenant = async (tenantId: string, group: GovernanceWrite[]) => {
      try {
        count(await apply(tenantId, group));
        return;
      } catch (error) {
        if (!isPostgresRejection(error)) throw error;
      }
      // Refused as a whole: find the writes at fault one by one.
      for (const write of group) {
        try {
          count(await apply(tenantId, [write]));
        } catch (error) {
          if (!isPostgresRejection(error)) throw error;
          result.skipped.push({ id: idOf(write), reason: rejectionReason(sqlState(error)) });
        }
      }
    };
    const queue: [string, GovernanceWrite[]][] = [...byTenant].map(([tenant, group]) => [
      tenant,
      [...group.values()],
    ]);
    const workers = Array.from({ length: Math.min(TENANT_CONCURRENCY, queue.length) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await writeTenant(...next);
    });
    await Promise.all(workers);
    return result;
  };
}

function idOf(write: GovernanceWrite): string {
  return write.kind === "record" ? write.record.id : write.change.eventId;
}

/**
 * Inserts a requested approval (ON CONFLICT DO NOTHING: the id is the approval's) or marks
 * one consumed. The envelope and policy are kept only when they exist in this tenant (a
 * same-tenant foreign key would otherwise refuse the row for an id the caller made up).
 */
async function applyApprovalChange(tx: TenantTx<Schema>, change: ApprovalChange): Promise<number> {
  if (change.kind === "consumed") {
    const { rowCount } = await tx.execute(sql`
      update approvals set consumed_at = ${change.at.toISOString()}, updated_at = now()
      where id = ${change.approvalId} and consumed_at is null`);
    return rowCount ?? 0;
  }
  const r = change.row;
  const existing = (table: "envelopes" | "policies", id: string | undefined) =>
    id === undefined
      ? sql`null::uuid`
      : sql`(select id from ${sql.identifier(table)} where id = ${id}::uuid)`;
  const { rowCount } = await tx.execute(sql`
    insert into approvals (
      id, tenant_id, envelope_id, policy_id, workflow_id, action_name, reason, status,
      expires_at, created_at, updated_at, arguments_hash, decision_id, rule_id, requested_by,
      reasons, context
    ) values (
      ${r.id}, ${r.tenantId}, ${existing("envelopes", r.envelopeId)},
      ${existing("policies", r.policyId)}, ${r.workflowId}, ${r.actionName}, ${r.reason},
      'PENDING', ${r.expiresAt.toISOString()}, ${r.createdAt.toISOString()}, now(),
      ${r.argumentsHash}, ${r.decisionId}, ${r.ruleId}, ${r.requestedBy},
      array(select jsonb_array_elements_text(${JSON.stringify(r.reasons)}::jsonb)),
      ${JSON.stringify(r.context)}::jsonb
    )
    on conflict (id) do nothing`);
  return rowCount ?? 0;
}

function rejectionReason(state: string | undefined): string {
  if (state === "23503") return "tenant_not_found: SQLSTATE 23503";
  if (state?.startsWith("23")) return `constraint_violation: SQLSTATE ${state}`;
  return `data_exception: SQLSTATE ${state}`;
}
