/**
 * Reconciliation: makes the edge's Redis state match PostgreSQL, the source of truth —
 * after a Redis flush or failover, a settle whose Redis step failed, or a missed publish.
 * For every tenant (listed through the platform role: `tenants` is not granted to the
 * application role), in this order:
 * 1. PENDING approvals past expires_at become EXPIRED (APPROVAL_EXPIRED events);
 * 2. the EnvelopeRecords of non-terminal envelopes are written again;
 * 3. pending approval keys, unconsumed grants and rejection markers are written again;
 * 4. every budget's current-period usage and every live envelope's own counter are
 *    restored (max-set, so racing a settle never lowers or double counts anything);
 * 5. the budget events of the last 10 minutes are published again from their `events`
 *    rows (the outbox of usage/budget-outbox.ts: JetStream and the stores dedupe copies);
 * 6. last, the BudgetSet is published again. The edge's reserve script refuses a tenant
 *    whose set is missing (Redis lost its state), so the set must not come back before
 *    the rest of the tenant's state: a present set means the counters were restored. A
 *    failed restore step therefore leaves a flushed tenant failing closed, not open.
 *
 * Reservations in flight at a flush are lost (Redis held them only): the budgets then
 * admit up to those amounts again until the calls settle — PostgreSQL cannot know them.
 *
 * Each step of each tenant is tried on its own: one failing (logged, counted) does not
 * stop the others. Run by `npm run budgets:reconcile`, by the functions Node server at
 * start and every 60 s (startReconcileLoop), and in AWS by an SST cron (reconcile-cron.ts).
 */
import { sql } from "drizzle-orm";
import { ENVELOPE_OPEN_STATUSES } from "../../../core/budget/envelope-record.js";
import { BudgetLedger } from "../../../core/budget/ledger.js";
import type { UsedValues } from "../../../core/budget/ledger-types.js";
import { expireApprovals } from "../approvals/approval-expiry.js";
import { restoreApprovalKeys } from "../approvals/approval-keys.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { publishEnvelopeRecords } from "../envelopes/envelope-records.js";
import { timeOutEnvelopes } from "../envelopes/envelope-timeout.js";
import { republishBudgetEvents } from "../usage/budget-outbox.js";
import { allBudgets, budgetUsed, windowOf } from "../usage/budget-rows.js";
import { envelopeUsed, summaryUsage } from "../usage/envelope-usage.js";
import { publishBudgetSet } from "./budget-set-publisher.js";

export const RECONCILE_FAILED_METRIC = "fulcrum_functions_budget_reconcile_failures_total";
export const RECONCILE_RUNS_METRIC = "fulcrum_functions_budget_reconcile_runs_total";

export type ReconcileDeps = Pick<
  FunctionsDeps,
  "db" | "platformDb" | "redis" | "budgetKeys" | "eventPublisher" | "metrics" | "logger" | "now"
>;

export interface ReconcileReport {
  tenants: number;
  approvalsExpired: number;
  envelopesTimedOut: number;
  envelopeRecords: number;
  approvalKeys: number;
  countersRestored: number;
  budgetEventsRepublished: number;
  /** One entry per failed step; empty when everything was repaired. */
  failures: { tenantId: string; step: string; error: string }[];
}

/** Counters per ledger.restore call: one script, so keep each bounded. */
const RESTORE_BATCH = 200;

/**
 * @param options.tenantIds only these tenants (default: every tenant).
 * @throws Error when the platform database is not configured (tenants cannot be listed).
 */
export async function reconcileBudgets(
  deps: ReconcileDeps,
  options: { tenantIds?: readonly string[] } = {},
): Promise<ReconcileReport> {
  describeMetrics(deps);
  deps.metrics.increment(RECONCILE_RUNS_METRIC);
  const tenantIds = options.tenantIds ?? (await listTenants(deps));
  const ledger = new BudgetLedger({ redis: deps.redis, keys: deps.budgetKeys });
  const report: ReconcileReport = {
    tenants: tenantIds.length,
    approvalsExpired: 0,
    envelopesTimedOut: 0,
    envelopeRecords: 0,
    approvalKeys: 0,
    countersRestored: 0,
    budgetEventsRepublished: 0,
    failures: [],
  };
  for (const tenantId of tenantIds) {
    const step = async (name: string, run: () => Promise<void>): Promise<boolean> => {
      try {
        await run();
        return true;
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        report.failures.push({ tenantId, step: name, error: message });
        deps.metrics.increment(RECONCILE_FAILED_METRIC, { step: name });
        deps.logger.error("budget reconciliation step failed", {
          tenantId,
          step: name,
          error: message,
        });
        return false;
      }
    };
    const now = deps.now();
    await step("expire_approvals", async () => {
      report.approvalsExpired += await expireApprovals(deps, tenantId, now);
    });
    await step("envelope_timeouts", async () => {
      report.envelopesTimedOut += await timeOutEnvelopes(deps, tenantId, now);
    });
    const records = await step("envelope_records", async () => {
      report.envelopeRecords += await publishEnvelopeRecords(deps, tenantId);
    });
    const approvals = await step("approval_keys", async () => {
      report.approvalKeys += await restoreApprovalKeys(deps, tenantId, now);
    });
    const counters = await step("counters", async () => {
      const used = await currentUsage(deps, tenantId, now.getTime());
      for (let i = 0; i < used.length; i += RESTORE_BATCH) {
        await ledger.restore(used.slice(i, i + RESTORE_BATCH));
      }
      report.countersRestored += used.length;
    });
    await step("republish_budget_events", async () => {
      report.budgetEventsRepublished += await republishBudgetEvents(deps, tenantId, now);
    });
    await step("budget_set", async () => {
      if (!(records && approvals && counters)) {
        throw new Error("not published: a restore step failed (retried on the next run)");
      }
      await publishBudgetSet(deps, tenantId);
    });
  }
  return report;
}

async function listTenants(deps: ReconcileDeps): Promise<string[]> {
  if (!deps.platformDb) {
    throw new Error("reconciliation needs DATABASE_PLATFORM_URL to list the tenants");
  }
  const { rows } = await deps.platformDb.execute<{ id: string }>(
    sql`select id::text as id from tenants order by id`,
  );
  return rows.map((r) => r.id);
}

/**
 * What the ledger's counters must hold for the tenant: every budget's usage in its
 * current period (a row still counting an earlier period has used nothing of the current
 * one: nothing to restore), and the own counter of every live envelope and each of its
 * ancestors (the edge checks those too). Counters with no usage are left alone.
 */
export async function currentUsage(
  deps: Pick<ReconcileDeps, "db" | "budgetKeys">,
  tenantId: string,
  nowMs: number,
): Promise<UsedValues[]> {
  const { budgets, envelopes } = await inTenant(deps.db, tenantId, async (tx) => ({
    budgets: await allBudgets(tx),
    envelopes: (
      await tx.execute<{ id: string; cost_summary: Record<string, unknown> }>(sql`
        with recursive live(id, parent) as (
          select id, parent_envelope_id from envelopes
           where status = any(${`{${ENVELOPE_OPEN_STATUSES.join(",")}}`}::text[])
          union
          select e.id, e.parent_envelope_id from envelopes e join live l on e.id = l.parent
        )
        select e.id::text as id, e.cost_summary from envelopes e
         where e.id in (select id from live)`)
    ).rows,
  }));
  const used: UsedValues[] = [];
  for (const row of budgets) {
    const window = windowOf(row, nowMs);
    if (row.periodStartMs < window.startMs) continue;
    if (Object.values(row.used).every((v) => v === 0)) continue;
    used.push(budgetUsed(deps.budgetKeys, tenantId, row, window, nowMs));
  }
  for (const e of envelopes) {
    const summary = e.cost_summary ?? {};
    if (Object.values(summaryUsage(summary)).every((v) => v === 0)) continue;
    used.push(envelopeUsed(deps.budgetKeys, tenantId, e.id, summary, nowMs));
  }
  return used;
}

function describeMetrics(deps: Pick<ReconcileDeps, "metrics">): void {
  deps.metrics
    .describe(RECONCILE_RUNS_METRIC, "Budget reconciliations started (PostgreSQL → Redis)")
    .describe(
      RECONCILE_FAILED_METRIC,
      "Budget reconciliation steps that failed for a tenant (retried on the next run)",
    );
}

/**
 * Runs reconciliation now and then every `intervalMs` (default 60 s) until the returned
 * stop is called; a run still going when the next is due is not overlapped. Off (with
 * one log line) without the platform database, which lists the tenants.
 */
export function startReconcileLoop(deps: ReconcileDeps, intervalMs = 60_000): () => void {
  if (!deps.platformDb) {
    deps.logger.info("budget reconciliation is off: DATABASE_PLATFORM_URL is not set");
    return () => {};
  }
  let running = false;
  const run = async () => {
    if (running) return;
    running = true;
    try {
      const report = await reconcileBudgets(deps);
      if (report.failures.length > 0 || report.approvalsExpired > 0) {
        deps.logger.info("budget reconciliation", { ...report, failures: report.failures.length });
      }
    } catch (error) {
      deps.metrics.increment(RECONCILE_FAILED_METRIC, { step: "tenants" });
      deps.logger.error("budget reconciliation failed", {
        error: error instanceof Error ? error.message : String(error),
      });
    } finally {
      running = false;
    }
  };
  void run();
  const timer = setInterval(() => void run(), intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
