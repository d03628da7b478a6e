/**
 * Budget periods: which window of time a budget's usage counts. Calendar periods are UTC
 * (a tenant in any time zone sees the same reset instants as the edge and PostgreSQL);
 * CUSTOM periods repeat every `customSeconds` from the budget's creation (its anchor), so
 * two budgets of the same length created at different times reset at different instants.
 *
 * Web-standard only: the edge and functions both compute windows with this file.
 */
import { BudgetPeriod } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";

export const BUDGET_PERIODS = [
  "HOURLY",
  "DAILY",
  "WEEKLY",
  "MONTHLY",
  "QUARTERLY",
  "YEARLY",
  "CUSTOM",
  "INFINITE",
] as const;

export type BudgetPeriodName = (typeof BUDGET_PERIODS)[number];

export interface PeriodWindow {
  /** First millisecond of the period (inclusive). 0 for INFINITE. */
  startMs: number;
  /** First millisecond of the next period (exclusive); null for INFINITE. */
  endMs: number | null;
}

export interface PeriodOptions {
  /** Length of a CUSTOM period; required (> 0) for CUSTOM, ignored otherwise. */
  customSeconds?: number;
  /** Where CUSTOM periods start counting (the budget's created_at); ignored otherwise. */
  anchorMs?: number;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * The period of `period` that contains `nowMs`.
 *
 * @example
 * periodWindow("WEEKLY", {}, Date.UTC(2026, 10, 26)) // Monday 2026-11-23 .. Monday 2026-11-30
 * periodWindow("CUSTOM", { customSeconds: 600, anchorMs: created }, Date.now())
 */
export function periodWindow(
  period: BudgetPeriodName,
  options: PeriodOptions,
  nowMs: number,
): PeriodWindow {
  if (!Number.isFinite(nowMs)) throw new RangeError(`periodWindow: invalid time ${nowMs}`);
  const now = new Date(nowMs);
  const y = now.getUTCFullYear();
  const m = now.getUTCMonth();
  switch (period) {
    case "HOURLY":
      return fixed(nowMs, HOUR);
    case "DAILY":
      return fixed(nowMs, DAY);
    case "WEEKLY": {
      // ISO weeks start on Monday; getUTCDay() is 0 for Sunday.
      const dayStart = Math.floor(nowMs / DAY) * DAY;
      const startMs = dayStart - ((now.getUTCDay() + 6) % 7) * DAY;
      return { startMs, endMs: startMs + 7 * DAY };
    }
    case "MONTHLY":
      return { startMs: Date.UTC(y, m, 1), endMs: Date.UTC(y, m + 1, 1) };
    case "QUARTERLY": {
      const first = m - (m % 3);
      return { startMs: Date.UTC(y, first, 1), endMs: Date.UTC(y, first + 3, 1) };
    }
    case "YEARLY":
      return { startMs: Date.UTC(y, 0, 1), endMs: Date.UTC(y + 1, 0, 1) };
    case "CUSTOM": {
      const seconds = options.customSeconds ?? 0;
      if (!Number.isSafeInteger(seconds) || seconds <= 0) {
        throw new RangeError(`a CUSTOM period needs customSeconds > 0 (got ${seconds})`);
      }
      const anchor = options.anchorMs ?? 0;
      if (!Number.isFinite(anchor)) throw new RangeError(`invalid CUSTOM anchor ${anchor}`);
      const length = seconds * 1000;
      // floor also places times before the anchor in the right (earlier) period.
      const startMs = anchor + Math.floor((nowMs - anchor) / length) * length;
      return { startMs, endMs: startMs + length };
    }
    case "INFINITE":
      return { startMs: 0, endMs: null };
    default:
      throw new RangeError(`unknown budget period ${String(period)}`);
  }
}

function fixed(nowMs: number, length: number): PeriodWindow {
  const startMs = Math.floor(nowMs / length) * length;
  return { startMs, endMs: startMs + length };
}

/** Whether `value` names a period ("DAILY", …). */
export function isBudgetPeriodName(value: unknown): value is BudgetPeriodName {
  return typeof value === "string" && (BUDGET_PERIODS as readonly string[]).includes(value);
}

/** The proto enum value as a period name; undefined for UNSPECIFIED or unknown values. */
export function periodFromProto(period: BudgetPeriod): BudgetPeriodName | undefined {
  const name: unknown = BudgetPeriod[period];
  return isBudgetPeriodName(name) ? name : undefined;
}

export function periodToProto(period: BudgetPeriodName): BudgetPeriod {
  return BudgetPeriod[period];
}

const DAY_MS = 24 * 3_600_000;

/**
 * When a ledger counter may leave Redis: a period's counter a day after the period (late
 * settles still land); one with no period end (INFINITE budgets, envelopes) 30 days after
 * it was last written — an ended envelope's counters go, and reconciliation restores a
 * live one that idled longer. Edge and functions both use this, so neither strips the
 * other's expiry.
 */
export function counterExpiryMs(periodEndMs: number | null, nowMs: number): number {
  return periodEndMs === null ? nowMs + 30 * DAY_MS : periodEndMs + DAY_MS;
}
