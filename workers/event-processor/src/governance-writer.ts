/**
 * Writes governance records to PostgreSQL `events`: one transaction per tenant through
 * `withTenant`, so row-level security checks every row against its own tenant. A record
 * PostgreSQL refuses (its tenant does not exist, a value breaks a check) is returned as
 * skipped rather than thrown, so it cannot hold the stream back; anything else (the
 * database is unreachable) throws and the batch is retried.
 */

import type { GovernanceRecord } from "../../../core/audit/governance-record.js";
import type { Db } from "../../../db/client.js";
import { events } from "../../../db/schema/events.js";
import { withTenant } from "../../../db/tenant-context.js";
import { isPostgresRejection, sqlState } from "./failures.js";

const TENANT_CONCURRENCY = 4;

export function governanceWriter(db: Db) {
  const insert = (tenantId: string, records: GovernanceRecord[]) =>
    withTenant(db, tenantId, (tx) =>
      tx.insert(events).values(records).onConflictDoNothing({ target: events.id }).returning({
        id: events.id,
      }),
    );

  return async (records: GovernanceRecord[]) => {
    const byTenant = new Map<string, Map<string, GovernanceRecord>>();
    for (const record of records) {
      const group = byTenant.get(record.tenantId) ?? new Map<string, GovernanceRecord>();
      byTenant.set(record.tenantId, group);
      group.set(record.id, record); // a redelivered duplicate in the same batch
    }
    let written = 0;
    const skipped: { record: GovernanceRecord; reason: string }[] = [];
    const writeTenant = async (tenantId: string, group: GovernanceRecord[]) => {
      try {
        written += (await insert(tenantId, group)).length;
        return;
      } catch (error) {
        if (!isPostgresRejection(error)) throw error;
      }
      // Refused as a whole: find the rows at fault one by one.
      for (const record of group) {
        try {
          written += (await insert(tenantId, [record])).length;
        } catch (error) {
          if (!isPostgresRejection(error)) throw error;
          skipped.push({ record, reason: rejectionReason(sqlState(error)) });
        }
      }
    };
    const queue: [string, GovernanceRecord[]][] = [...byTenant].map(([tenant, group]) => [
      tenant,
      [...group.values()],
    ]);
    const workers = Array.from({ length: Math.min(TENANT_CONCURRENCY, queue.length) }, async () => {
      for (let next = queue.shift(); next; next = queue.shift()) await writeTenant(...next);
    });
    await Promise.all(workers);
    return { written, skipped };
  };
}

function rejectionReason(state: string | undefined): string {
  if (state === "23503") return "tenant_not_found: SQLSTATE 23503";
  if (state?.startsWith("23")) return `constraint_violation: SQLSTATE ${state}`;
  return `data_exception: SQLSTATE ${state}`;
}
