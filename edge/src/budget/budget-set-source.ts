import type { Redis } from "@upstash/redis";
import { withDeadline } from "../../../core/async/deadline.js";
import { type BudgetSet, parseBudgetSet } from "../../../core/budget/budget-keys.js";
import { Lru } from "../../../core/cache/lru.js";
import { SingleFlight } from "../../../core/cache/single-flight.js";
import type { Logger } from "../../../core/logging/logger.js";
import type { Metrics } from "../../../core/observability/metrics.js";

/** Counted once per read of a tenant's BudgetSet from Redis, by outcome. */
export const BUDGET_SET_LOADS_METRIC = "fulcrum_edge_budget_set_loads_total";

export interface BudgetSetSourceOptions {
  redis: Redis;
  /** The tenant's BudgetSet key (core/budget/budget-keys.ts `budgetSet`). */
  keyOf: (tenantId: string) => string;
  /** How long a read set is served before Redis is asked again; default 500 ms. */
  refreshMs?: number;
  /**
   * How long the last good set keeps serving while Redis fails; default 60 s. Past it
   * `get` throws and the decision fails closed: budgets that may have changed are not
   * guessed at for longer.
   */
  maxStaleMs?: number;
  /** Tenants cached (least recently used dropped); default 1024. */
  maxTenants?: number;
  timeoutMs?: number;
  metrics?: Metrics;
  logger?: Logger;
  now?: () => number;
}

interface Entry {
  /** null: the tenant has no BudgetSet (no budgets). */
  set: BudgetSet | null;
  /** When `set` was last read successfully. */
  goodAt: number;
  /** When Redis was last asked (successfully or not). */
  checkedAt: number;
}

/** The cached set is too old to serve and Redis cannot give a new one. */
export class BudgetSetUnavailableError extends Error {
  override readonly name = "BudgetSetUnavailableError";
}

/**
 * Each tenant's {@link BudgetSet} (the budgets and prices functions publish to Redis),
 * read at most every `refreshMs` per isolate: a tenant without budgets costs one GET
 * per refresh and nothing per decision. Concurrent reads of a tenant share one GET
 * (single flight); a failed read keeps the last good set for `maxStaleMs` (a set
 * without budgets for as long as Redis is out). A set that
 * does not parse is treated like a failed read (kept last good, then an error), never
 * as "no budgets".
 */
export class BudgetSetSource {
  private readonly refreshMs: number;
  private readonly maxStaleMs: number;
  private readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly tenants: Lru<string, Entry>;
  private readonly loads = new SingleFlight<string, BudgetSet | null>();

  constructor(private readonly options: BudgetSetSourceOptions) {
    this.refreshMs = options.refreshMs ?? 500;
    this.maxStaleMs = options.maxStaleMs ?? 60_000;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.now = options.now ?? Date.now;
    this.tenants = new Lru({ maxEntries: options.maxTenants ?? 1024 });
  }

  /**
   * The tenant's set (null: no budgets).
   * @throws BudgetSetUnavailableError when Redis fails and no good set is fresh enough.
   */
  get(tenantId: string): Promise<BudgetSet | null> | BudgetSet | null {
    const entry = this.tenants.get(tenantId);
    if (entry && this.now() - entry.checkedAt < this.refreshMs) return entry.set;
    return this.loads.run(tenantId, () => this.load(tenantId));
  }

  private async load(tenantId: string): Promise<BudgetSet | null> {
    const previous = this.tenants.peek(tenantId);
    const at = this.now();
    try {
      const raw = await withDeadline(
        this.options.redis.get<unknown>(this.options.keyOf(tenantId)),
        this.timeoutMs,
        `Redis did not answer within ${this.timeoutMs} ms`,
      );
      const missing = raw === null || raw === undefined;
      // Functions never delete a set (a tenant whose budgets were all deleted gets an empty
      // one), so a set that vanished was lost by Redis (flush, eviction): "no budgets" would
      // fail open. Served stale, the reservation meets the ledger's missing-set guard.
      if (missing && (previous?.set?.budgets.length ?? 0) > 0) {
        throw new Error("the BudgetSet is missing from Redis (flushed or evicted)");
      }
      const set = missing ? null : parseBudgetSet(raw);
      this.tenants.set(tenantId, { set, goodAt: at, checkedAt: at });
      this.count("loaded");
      return set;
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      // A tenant last seen without budgets keeps none however long Redis is out: there
      // is nothing to hold, and a budget created meanwhile could not be reserved
      // against anyway. Budgets that exist are served stale only for maxStaleMs.
      const hadNoBudgets = previous !== undefined && (previous.set?.budgets.length ?? 0) === 0;
      if (previous && (hadNoBudgets || at - previous.goodAt <= this.maxStaleMs)) {
        // Retried at the next refresh, not on every decision.
        this.tenants.set(tenantId, { ...previous, checkedAt: at });
        this.count("kept_last_good");
        this.options.logger?.info("budget set not read; serving the last good one", {
          tenantId,
          error: message,
        });
        return previous.set;
      }
      this.count("failed");
      throw new BudgetSetUnavailableError(
        `the tenant's budgets could not be read from Redis (${message})`,
        { cause: error },
      );
    }
  }

  private count(outcome: "loaded" | "kept_last_good" | "failed"): void {
    this.options.metrics?.increment(BUDGET_SET_LOADS_METRIC, { outcome });
  }
}
