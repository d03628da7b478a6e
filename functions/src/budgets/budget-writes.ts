/**
 * CreateBudget / UpdateBudget / DeleteBudget inside the caller's tenant transaction, each
 * with its audit row (a MANAGEMENT_CHANGE event after the commit). The caller publishes
 * the tenant's BudgetSet once the transaction has committed.
 */
import { and, eq, inArray, sql } from "drizzle-orm";
import type { PgUpdateSetSource } from "drizzle-orm/pg-core";
import { ENVELOPE_OPEN_STATUSES } from "../../../core/budget/envelope-record.js";
import { periodToProto } from "../../../core/budget/periods.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { ConstraintMessages } from "../../../db/database-errors.js";
import {
  budgets,
  envelopes,
  type BudgetThreshold as StoredThreshold,
} from "../../../db/schema/index.js";
import { type Budget, BudgetState } from "../../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import { recordAudit } from "../audit/audit-trail.js";
import type { TenantPrincipal } from "../auth/principal.js";
import type { Tx } from "../db/tenant-transaction.js";
import { requireOwnTenant } from "../policies/policy-store.js";
import {
  checkName,
  limitColumns,
  periodColumns,
  scopeColumns,
  thresholdColumn,
} from "./budget-input.js";
import { loadBudget } from "./budget-store.js";
import type { BudgetRow } from "./budget-view.js";

export const BUDGET_CONSTRAINTS: ConstraintMessages = {
  unique: { budgets_tenant_id_name_key: "a budget with this name already exists" },
  foreignKey: {
    budgets_envelope_id_fkey: "budget.envelope_id names no envelope of this tenant",
  },
};

/** What the audit row says about a budget: no usage, just its definition. */
function auditDetails(row: BudgetRow, extra: Record<string, unknown> = {}) {
  return {
    name: row.name,
    workflow_id: row.workflowId,
    envelope_id: row.envelopeId,
    period: row.period,
    period_seconds: row.periodSeconds,
    hard_limit: row.hardLimit,
    status: row.status,
    ...extra,
  };
}

export async function insertBudget(
  tx: Tx,
  caller: TenantPrincipal,
  budget: Budget,
): Promise<BudgetRow> {
  requireOwnTenant(caller.tenantId, budget.tenantId, "budget.tenant_id");
  const values = {
    tenantId: caller.tenantId,
    name: checkName(budget.name, "budget.name"),
    description: budget.description,
    tags: budget.tags,
    ...scopeColumns(budget),
    ...periodColumns(budget, "budget"),
    ...limitColumns(budget.limits, "budget.limits"),
    thresholds: thresholdColumn(budget.thresholds),
    // Unset: a hard budget (it holds unless asked not to).
    hardLimit: budget.hardLimit ?? true,
    status: budget.status === BudgetState.SUSPENDED ? ("SUSPENDED" as const) : ("OK" as const),
    createdBy: caller.userId,
  };
  const [row] = await tx.insert(budgets).values(values).returning();
  if (!row) throw new Error("insert returned no row");
  await recordAudit(tx, caller.tenantId, caller, {
    action: "budget.created",
    targetType: "budget",
    targetId: row.id,
    details: auditDetails(row),
  });
  return row;
}

const MUTABLE = new Set([
  "name",
  "description",
  "tags",
  "limits",
  "thresholds",
  "period",
  "custom_period_seconds",
  "status",
  "hard_limit",
]);

/**
 * Applies the fields named in `paths`. Changing the period (or a CUSTOM period's length)
 * starts counting afresh: the usage columns, the period start and the thresholds'
 * notified marks are reset, as at a rollover. `status` may only be set to SUSPENDED or
 * back to OK (which lifts a suspension; the state is then computed from usage again).
 */
export async function applyBudgetUpdate(
  tx: Tx,
  caller: TenantPrincipal,
  id: string,
  budget: Budget,
  paths: readonly string[],
): Promise<BudgetRow> {
  requireOwnTenant(caller.tenantId, budget.tenantId, "budget.tenant_id");
  if (paths.length === 0) {
    throw new FulcrumError("Invalid", "update_mask names no field to update", {
      field: "update_mask",
    });
  }
  for (const path of paths) {
    if (!MUTABLE.has(path)) {
      throw new FulcrumError("Invalid", `update_mask: ${path} cannot be updated`, {
        field: "update_mask",
      });
    }
  }
  const current = await loadBudget(tx, id, true);
  const has = (p: string) => paths.includes(p);
  const set: PgUpdateSetSource<typeof budgets> = {};
  if (has("name")) set.name = checkName(budget.name, "budget.name");
  if (has("description")) set.description = budget.description;
  if (has("tags")) set.tags = budget.tags;
  if (has("limits")) Object.assign(set, limitColumns(budget.limits, "budget.limits"));
  if (has("thresholds")) set.thresholds = thresholdColumn(budget.thresholds, current.thresholds);
  if (has("hard_limit")) set.hardLimit = budget.hardLimit ?? true;
  if (has("period") || has("custom_period_seconds")) {
    // The other half comes from the row, so a CUSTOM budget can change its length alone.
    const merged = {
      ...budget,
      period: has("period") ? budget.period : periodToProto(current.period),
      customPeriodSeconds: has("custom_period_seconds")
        ? budget.customPeriodSeconds
        : BigInt(current.periodSeconds ?? 0),
    } as Budget;
    const period = periodColumns(merged, "budget");
    if (period.period !== current.period || period.periodSeconds !== current.periodSeconds) {
      // The thresholds to reset are the ones being stored: new ones given in the same
      // update must not be replaced by the row's old list.
      const thresholds = (set.thresholds as StoredThreshold[] | undefined) ?? current.thresholds;
      Object.assign(set, period, freshPeriod(thresholds));
    }
  }
  if (has("status")) {
    if (budget.status === BudgetState.SUSPENDED) set.status = "SUSPENDED";
    else if (budget.status === BudgetState.OK) {
      if (current.status === "SUSPENDED") set.status = "OK";
    } else {
      throw new FulcrumError(
        "Invalid",
        "budget.status can only be set to BUDGET_STATE_SUSPENDED or BUDGET_STATE_OK (to lift a suspension); the other states follow from usage",
        { field: "budget.status" },
      );
    }
  }
  const [row] = await tx
    .update(budgets)
    .set({ ...set, updatedAt: sql`now()` })
    .where(eq(budgets.id, id))
    .returning();
  if (!row) throw new Error("update returned no row");
  await recordAudit(tx, caller.tenantId, caller, {
    action: statusAction(current, row) ?? "budget.updated",
    targetType: "budget",
    targetId: id,
    details: auditDetails(row, { fields: [...paths].sort() }),
  });
  return row;
}

function statusAction(before: BudgetRow, after: BudgetRow): string | undefined {
  if (before.status !== "SUSPENDED" && after.status === "SUSPENDED") return "budget.suspended";
  if (before.status === "SUSPENDED" && after.status !== "SUSPENDED") return "budget.resumed";
  return undefined;
}

/** The columns of a budget that starts counting now, with `thresholds` un-notified. */
function freshPeriod(thresholds: readonly StoredThreshold[]): PgUpdateSetSource<typeof budgets> {
  return {
    periodStart: sql`now()`,
    currentTokens: 0,
    currentInputTokens: 0,
    currentOutputTokens: 0,
    currentSpendUsd: "0",
    currentLlmCalls: 0,
    currentToolCalls: 0,
    currentExecutionMs: 0,
    thresholds: thresholds.map((t) => ({ ...t, notified: false, notified_at: null })),
  };
}

/**
 * Deletes a budget. Refused (FailedPrecondition) while a running (non-terminal) envelope
 * draws on it: deleting it would silently lift that execution's governance. Its history
 * (cost_events) and finished envelopes keep their rows, without the reference.
 */
export async function deleteBudgetRow(tx: Tx, caller: TenantPrincipal, id: string): Promise<void> {
  const row = await loadBudget(tx, id, true);
  const active = await tx
    .select({ id: envelopes.id })
    .from(envelopes)
    .where(and(eq(envelopes.budgetId, id), inArray(envelopes.status, ENVELOPE_OPEN_STATUSES)))
    .limit(1);
  if (active[0]) {
    throw new FulcrumError(
      "FailedPrecondition",
      `budget ${id} governs envelope ${active[0].id}, which is still open: finish or terminate it first`,
    );
  }
  await tx.delete(budgets).where(eq(budgets.id, id));
  await recordAudit(tx, caller.tenantId, caller, {
    action: "budget.deleted",
    targetType: "budget",
    targetId: id,
    details: auditDetails(row),
  });
}
