/**
 * The `BudgetSet` of a tenant: every budget and the tenant's price table, as functions
 * publish it to Redis (core/budget/budget-keys.ts `budgetSet(t)`) on every budget or price
 * change and on reconciliation, and as the edge reads it (cached ~500 ms) to pick the
 * counters a decision reserves against.
 */
import { type BudgetLimits, LIMIT_DIMENSIONS } from "./limits.js";
import { BUDGET_PERIODS, type BudgetPeriodName } from "./periods.js";
import { isModelPrice, type ModelPrice } from "./prices.js";
import { decodeStored, RecordReader } from "./record-reader.js";

export const BUDGET_SCOPES = ["tenant", "workflow", "envelope"] as const;
export type BudgetScope = (typeof BUDGET_SCOPES)[number];

export interface BudgetDef {
  id: string;
  name: string;
  scope: BudgetScope;
  /** Set exactly when scope is "workflow". */
  workflowId?: string;
  /** Set exactly when scope is "envelope". */
  envelopeId?: string;
  period: BudgetPeriodName;
  /** CUSTOM only: the period's length. */
  customSeconds?: number;
  /** The budget's created_at: where CUSTOM periods are counted from. */
  anchorMs: number;
  limits: BudgetLimits;
  /** Percentages, ascending (defaults [80, 100] are filled in by the publisher). */
  thresholds: number[];
  suspended: boolean;
  /**
   * false: exceeding the budget only warns (Budget.hard_limit). Optional so that sets
   * published before it existed read as hard budgets. (Addition to the issue-6 brief.)
   */
  hardLimit?: boolean;
}

export interface BudgetSet {
  /** When it was published (ms): a newer set replaces an older one in caches. */
  version: number;
  budgets: BudgetDef[];
  /** The tenant's prices merged over the defaults: model → [input, output] USD per million. */
  prices: Record<string, ModelPrice>;
  fallback: ModelPrice;
}

/**
 * Checks a stored budget set (a JSON string or the parsed value) field by field.
 * Throws FulcrumError Internal naming the first wrong field.
 *
 * @example const set = parseBudgetSet(await redis.get(keys.budgetSet(tenantId)));
 */
export function parseBudgetSet(raw: unknown): BudgetSet {
  const r = new RecordReader("the stored budget set");
  const o = r.object(decodeStored(raw, r), "(record)");
  const budgets = o.budgets;
  if (!Array.isArray(budgets)) return r.fail("budgets", "must be an array");
  const prices = r.object(o.prices, "prices");
  const checkedPrices: Record<string, ModelPrice> = {};
  for (const [model, price] of Object.entries(prices)) {
    if (!isModelPrice(price)) {
      return r.at("prices").fail(model, "must be [inputPerMillion, outputPerMillion]");
    }
    checkedPrices[model] = price;
  }
  if (!isModelPrice(o.fallback))
    return r.fail("fallback", "must be [inputPerMillion, outputPerMillion]");
  const ids = new Set<string>();
  const defs = budgets.map((b, i) => {
    const def = parseBudgetDef(b, r.at("budgets").at(i));
    if (ids.has(def.id)) r.at("budgets").at(i).fail("id", `repeats ${def.id}`);
    ids.add(def.id);
    return def;
  });
  return {
    version: r.count(o.version, "version"),
    budgets: defs,
    prices: checkedPrices,
    fallback: o.fallback,
  };
}

/** Checks one budget of a set; `reader` places errors (budgets[i].…). */
export function parseBudgetDef(raw: unknown, reader = new RecordReader("the budget")): BudgetDef {
  const r = reader;
  const o = r.object(raw, "(budget)");
  const scope = r.oneOf(o.scope, "scope", BUDGET_SCOPES);
  const period = r.oneOf(o.period, "period", BUDGET_PERIODS);
  const workflowId = r.optionalString(o.workflowId, "workflowId");
  const envelopeId = r.optionalString(o.envelopeId, "envelopeId");
  if ((scope === "workflow") !== (workflowId !== undefined)) {
    r.fail("workflowId", "is required for scope workflow and only allowed with it");
  }
  if ((scope === "envelope") !== (envelopeId !== undefined)) {
    r.fail("envelopeId", "is required for scope envelope and only allowed with it");
  }
  const customSeconds = r.optionalCount(o.customSeconds, "customSeconds");
  if ((period === "CUSTOM") !== (customSeconds !== undefined && customSeconds > 0)) {
    r.fail("customSeconds", "must be > 0 for period CUSTOM and is only allowed with it");
  }
  const rawLimits = r.object(o.limits, "limits");
  const limits: BudgetLimits = {};
  for (const key of Object.keys(rawLimits)) {
    if (!(LIMIT_DIMENSIONS as readonly string[]).includes(key))
      r.at("limits").fail(key, "is not a limit");
  }
  for (const dim of LIMIT_DIMENSIONS) {
    const limit = r.at("limits").optionalCount(rawLimits[dim], dim);
    if (limit !== undefined) limits[dim] = limit;
  }
  if (!Array.isArray(o.thresholds)) return r.fail("thresholds", "must be an array of percentages");
  const thresholds = o.thresholds.map((t, i) => {
    if (typeof t !== "number" || !(t > 0 && t <= 1000))
      r.fail(`thresholds[${i}]`, "must be in (0, 1000]");
    return t as number;
  });
  const hardLimit = o.hardLimit === undefined ? undefined : r.boolean(o.hardLimit, "hardLimit");
  return {
    id: r.string(o.id, "id"),
    name: r.string(o.name, "name"),
    scope,
    ...(workflowId !== undefined ? { workflowId } : {}),
    ...(envelopeId !== undefined ? { envelopeId } : {}),
    period,
    ...(customSeconds !== undefined ? { customSeconds } : {}),
    anchorMs: r.count(o.anchorMs, "anchorMs"),
    limits,
    thresholds,
    suspended: r.boolean(o.suspended, "suspended"),
    ...(hardLimit !== undefined ? { hardLimit } : {}),
  };
}
