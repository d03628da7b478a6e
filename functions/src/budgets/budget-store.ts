/**
 * Reading and listing budget rows of the caller's tenant (row-level security scopes every
 * query: another tenant's budget is simply not found).
 */
import { and, asc, eq, type SQL } from "drizzle-orm";
import type { BudgetStateName } from "../../../core/budget/status.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { budgets } from "../../../db/schema/index.js";
import type { Tx } from "../db/tenant-transaction.js";
import {
  afterCursor,
  cursorColumn,
  decodePageToken,
  pageSize,
  toPage,
} from "../pagination/page-token.js";
import { requireUuid } from "../tenancy/ids.js";
import { type BudgetRow, viewOf } from "./budget-view.js";

/** A request's budget id, checked (InvalidArgument naming `field` when not a UUID). */
export function budgetIdOf(field: string, value: string): string {
  return requireUuid(field, value);
}

/** @throws FulcrumError NotFound when the tenant has no such budget. */
export async function loadBudget(tx: Tx, id: string, lock = false): Promise<BudgetRow> {
  const query = tx.select().from(budgets).where(eq(budgets.id, id));
  const [row] = lock ? await query.for("update") : await query;
  if (!row) throw new FulcrumError("NotFound", `budget ${id} not found`);
  return row;
}

export interface BudgetFilters {
  workflowId?: string;
  envelopeId?: string;
  /** The state the API reports (computed at `now`), e.g. only EXCEEDED budgets. */
  state?: BudgetStateName;
}

/** Rows read per round while filtering on the computed state. */
const SCAN_BATCH = 200;

/**
 * One page of the tenant's budgets, oldest first, keyset-paged on (created_at, id). The
 * state is computed (usage of the current period against the limits), not a column, so
 * a state filter reads rows in batches and keeps the matching ones until the page is full.
 */
export async function listBudgets(
  tx: Tx,
  filters: BudgetFilters,
  request: { pageToken: string; pageSize: number },
  now: Date,
): Promise<{ rows: BudgetRow[]; nextPageToken: string }> {
  const scope = `budgets?wf=${filters.workflowId ?? ""}&env=${filters.envelopeId ?? ""}&state=${filters.state ?? ""}`;
  const size = pageSize(request.pageSize);
  let cursor = decodePageToken(scope, request.pageToken);
  const where: (SQL | undefined)[] = [
    filters.workflowId !== undefined ? eq(budgets.workflowId, filters.workflowId) : undefined,
    filters.envelopeId !== undefined ? eq(budgets.envelopeId, filters.envelopeId) : undefined,
  ];
  const kept: { row: BudgetRow; cursor: string; id: string }[] = [];
  for (;;) {
    const batch = filters.state === undefined ? size + 1 : SCAN_BATCH;
    const rows = await tx
      .select({ row: budgets, cursor: cursorColumn(budgets.createdAt) })
      .from(budgets)
      .where(and(...where, afterCursor(budgets.createdAt, budgets.id, cursor, "asc")))
      .orderBy(asc(budgets.createdAt), asc(budgets.id))
      .limit(batch);
    for (const r of rows) {
      if (filters.state === undefined || viewOf(r.row, now).state === filters.state) {
        kept.push({ row: r.row, cursor: r.cursor, id: r.row.id });
        if (kept.length > size) break;
      }
    }
    const last = rows[rows.length - 1];
    if (kept.length > size || rows.length < batch || !last) break;
    cursor = { createdAt: last.cursor, id: last.row.id };
  }
  const page = toPage(scope, kept, size);
  return { rows: page.rows.map((r) => r.row), nextPageToken: page.nextPageToken };
}
