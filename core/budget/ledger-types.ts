/**
 * The shapes BudgetLedger (ledger.ts) takes and returns. Units: integer tokens, calls,
 * micro-USD and milliseconds.
 */
import type { BudgetLimits, BudgetUsage, LimitDimension } from "./limits.js";

/** One counter a reservation is checked against and added to. */
export interface CounterSpec {
  /** budgetKeys.counter(tenantId, counterId, periodStartMs). */
  key: string;
  limits: BudgetLimits;
  /** Suspended counters refuse everything, estimates of 0 included. */
  suspended: boolean;
  /**
   * false: a soft budget (Budget.hard_limit false) — reserved against and reported, never
   * refusing on its limits. Default true. (Addition to the issue-6 brief.)
   */
  hard?: boolean;
  /** When the counter may be dropped (period end + 1 day); null/undefined: never. */
  expireAtMs?: number | null;
}

export interface UsageEstimate {
  tokens: number;
  costMicros: number;
  llmCalls: number;
  toolCalls: number;
}

export interface ReserveRequest {
  tenantId: string;
  counters: readonly CounterSpec[];
  estimate: UsageEstimate;
  /** How long the reservation holds if never settled or released. */
  ttlMs: number;
  /** Default: the ledger's clock. */
  nowMs?: number;
  /**
   * The tenant's BudgetSet key (budgetKeys.budgetSet). When given and absent from Redis,
   * nothing is checked or reserved and the result is `unsynced`: Redis lost the tenant's
   * published state, so its counters cannot be trusted until reconciliation restores them.
   */
  budgetSetKey?: string;
}

/** What is left of each limited dimension after the call (unlimited ones are absent). */
export interface CounterRemaining {
  key: string;
  remaining: Partial<Record<LimitDimension, number>>;
}

export type RefusalReason = "SUSPENDED" | "EXHAUSTED" | "WOULD_EXCEED";

export interface CounterRefusal {
  key: string;
  reason: RefusalReason;
  /** The limit that refused; absent for SUSPENDED. */
  dimension?: LimitDimension;
  used: number;
  reserved: number;
  limit: number;
}

export type ReserveResult =
  | {
      ok: true;
      /** Absent when nothing was reserved (every estimate 0, or no counters). */
      reservationId?: string;
      expiresAtMs: number;
      /** One per requested counter, in order. */
      remaining: CounterRemaining[];
    }
  | {
      ok: false;
      /**
       * true: `budgetSetKey` was missing from Redis; nothing was read or written, and
       * `refused` and `remaining` are empty.
       */
      unsynced?: true;
      /** The counters that refused (at least one, unless unsynced). */
      refused: CounterRefusal[];
      /** One per requested counter, in order, without this call's estimate (unless unsynced). */
      remaining: CounterRemaining[];
    };

/** A counter's absolute usage from PostgreSQL (field names as stored in the HASH). */
export interface UsedValues {
  key: string;
  u_tok: number;
  u_in: number;
  u_out: number;
  u_cost: number;
  u_llm: number;
  u_tool: number;
  /** Summed execution time (ms): budgets.current_execution_ms. */
  u_exec: number;
  expireAtMs?: number | null;
}

export interface SettleRequest {
  tenantId: string;
  reservationId?: string;
  used: readonly UsedValues[];
}

export interface SettleResult {
  /** The reservation was still held and is now released. */
  released: boolean;
  /** Per `used` entry, the counter's used values after the call. */
  used: BudgetUsage[];
}

export interface CounterState {
  key: string;
  used: BudgetUsage;
  /** Outstanding (unexpired) reservations. */
  reserved: { tokens: number; costMicros: number; llmCalls: number; toolCalls: number };
}
