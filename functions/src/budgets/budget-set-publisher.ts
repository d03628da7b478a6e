/**
 * Publishes a tenant's BudgetSet (core/budget/budget-set.ts) to Redis: every budget and
 * the tenant's prices merged over the defaults, rebuilt whole from PostgreSQL (never
 * patched), after every committed budget or price change and by reconciliation.
 *
 * Two publishes may race (two changes committing together, a change and a reconciliation).
 * The set's `version` is taken before PostgreSQL is read, and one script stores a set only
 * when it is not older than the stored one: the publish that read last (after the last
 * commit) has the newest version, so the stored set never goes back to an earlier state.
 */
import type { Redis } from "@upstash/redis";
import type { BudgetDef, BudgetKeys, BudgetSet } from "../../../core/budget/budget-keys.js";
import {
  DEFAULT_MODEL_PRICES,
  FALLBACK_MODEL_PRICE,
  type ModelPrice,
} from "../../../core/budget/prices.js";
import { normalizeThresholds } from "../../../core/budget/status.js";
import { budgets, modelPrices } from "../../../db/schema/index.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { type BudgetRow, limitsOf } from "./budget-view.js";

export type BudgetSetDeps = Pick<FunctionsDeps, "db" | "redis" | "budgetKeys" | "now">;

/** KEYS: the set. ARGV: the set JSON, its version. Returns 1 when stored. */
const PUT_SCRIPT = `
local cur = redis.call('GET', KEYS[1])
if cur then
  local ok, old = pcall(cjson.decode, cur)
  if ok and type(old) == 'table' and tonumber(old.version or 0) > tonumber(ARGV[2]) then
    return 0
  end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`;

export function budgetDefOf(row: BudgetRow): BudgetDef {
  const scope = row.envelopeId ? "envelope" : row.workflowId ? "workflow" : "tenant";
  return {
    id: row.id,
    name: row.name,
    scope,
    ...(row.workflowId && !row.envelopeId ? { workflowId: row.workflowId } : {}),
    ...(row.envelopeId ? { envelopeId: row.envelopeId } : {}),
    period: row.period,
    ...(row.period === "CUSTOM" && row.periodSeconds ? { customSeconds: row.periodSeconds } : {}),
    anchorMs: row.createdAt.getTime(),
    limits: limitsOf(row),
    thresholds: normalizeThresholds(row.thresholds.map((t) => t.percent)),
    suspended: row.status === "SUSPENDED",
    hardLimit: row.hardLimit,
  };
}

/** The tenant's prices over the built-in defaults. */
export function mergedPrices(
  own: readonly { modelId: string; inputUsdPerMillion: string; outputUsdPerMillion: string }[],
): Record<string, ModelPrice> {
  const prices: Record<string, ModelPrice> = { ...DEFAULT_MODEL_PRICES };
  for (const p of own) {
    prices[p.modelId] = [Number(p.inputUsdPerMillion), Number(p.outputUsdPerMillion)];
  }
  return prices;
}

/** The tenant's set as PostgreSQL has it now. */
export async function buildBudgetSet(
  deps: Pick<FunctionsDeps, "db">,
  tenantId: string,
  version: number,
): Promise<BudgetSet> {
  const { rows, prices } = await inTenant(deps.db, tenantId, async (tx) => ({
    rows: await tx.select().from(budgets).orderBy(budgets.id),
    prices: await tx
      .select({
        modelId: modelPrices.modelId,
        inputUsdPerMillion: modelPrices.inputUsdPerMillion,
        outputUsdPerMillion: modelPrices.outputUsdPerMillion,
      })
      .from(modelPrices),
  }));
  return {
    version,
    budgets: rows.map(budgetDefOf),
    prices: mergedPrices(prices),
    fallback: FALLBACK_MODEL_PRICE,
  };
}

async function put(redis: Redis, keys: BudgetKeys, tenantId: string, set: BudgetSet) {
  return redis.eval(PUT_SCRIPT, [keys.budgetSet(tenantId)], [JSON.stringify(set), set.version]);
}

/**
 * Rebuilds and stores the tenant's BudgetSet. Call after the change committed. Throws when
 * PostgreSQL or Redis fails (callers decide: management calls log it, reconciliation
 * counts it and repairs the set on its next run).
 *
 * @returns whether the set was stored (false: a newer one was already there).
 */
export async function publishBudgetSet(deps: BudgetSetDeps, tenantId: string): Promise<boolean> {
  const version = deps.now().getTime();
  const set = await buildBudgetSet(deps, tenantId, version);
  return (await put(deps.redis, deps.budgetKeys, tenantId, set)) === 1;
}

/**
 * publishBudgetSet for a management call whose change has committed: a Redis failure is
 * logged, not returned — the change is in PostgreSQL, and reconciliation (every 60 s)
 * publishes the set again.
 */
export async function republishAfterCommit(
  deps: BudgetSetDeps & Pick<FunctionsDeps, "logger">,
  tenantId: string,
): Promise<void> {
  try {
    await publishBudgetSet(deps, tenantId);
  } catch (error) {
    deps.logger.error("budget set not published; reconciliation will publish it", {
      tenantId,
      error,
    });
  }
}
