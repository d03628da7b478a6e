/**
 * BudgetLedger: budget counters and reservations in Redis (through @upstash/redis), so
 * budgets hold under concurrency and across edge isolates: every check-and-reserve is
 * one Lua script (core/budget/scripts/), atomic in Redis, over all the counters a call
 * applies to. PostgreSQL stays the source of truth for *used*; Redis holds the absolute
 * used values PostgreSQL last reported (raised, never lowered: settle / restore take the
 * max) and the sums of outstanding reservations, which expire by themselves (purged
 * inside the reserve script; no sweeper).
 *
 * Interface as in the issue-6 brief, with these additions (all backward compatible):
 * - CounterSpec.hard (default true; false = a soft budget: reserved against and reported,
 *   never refusing on its limits) to carry Budget.hard_limit (BudgetDef.hardLimit);
 * - a refusal names its reason (SUSPENDED / EXHAUSTED / WOULD_EXCEED) and dimension, and
 *   a refused result also carries `remaining` per counter;
 * - settle returns {released, used}, restore the counters' used values after the call,
 *   readCounters takes an optional nowMs;
 * - release / settle read the reservation's counter list first (one extra round trip) so
 *   that every key a script touches is passed in KEYS;
 * - ReserveRequest.budgetSetKey: reserve refuses (`unsynced`) when the tenant's BudgetSet
 *   is missing from Redis (flushed or evicted: the counters cannot be trusted either).
 *
 * Web-standard only (the edge imports it). Redis failures and timeouts throw FulcrumError
 * Unavailable; bad input throws FulcrumError Invalid; a refusal is a value.
 */
import type { Redis } from "@upstash/redis";
import { withDeadline } from "../async/deadline.js";
import { FulcrumError, invalid } from "../errors/fulcrum-error.js";
import { uuidv7 } from "../ids/uuidv7.js";
import { type BudgetKeys, budgetKeysIn } from "./budget-keys.js";
import {
  checkCounter,
  checkTenant,
  checkUsed,
  integers,
  safeJson,
  toUsage,
  usageRows,
  usedArgs,
} from "./ledger-input.js";
import type {
  CounterRefusal,
  CounterRemaining,
  CounterState,
  RefusalReason,
  ReserveRequest,
  ReserveResult,
  SettleRequest,
  SettleResult,
  UsedValues,
} from "./ledger-types.js";
import { type BudgetUsage, isCount, LIMIT_DIMENSIONS } from "./limits.js";
import { READ_LUA } from "./scripts/read.js";
import { RELEASE_LUA } from "./scripts/release.js";
import { RESERVE_LUA } from "./scripts/reserve.js";
import { RESTORE_LUA } from "./scripts/restore.js";
import { SETTLE_LUA } from "./scripts/settle.js";

export type * from "./ledger-types.js";

export interface BudgetLedgerOptions {
  /** For the edge: `enableAutoPipelining: true, retry: false` (our deadline applies). */
  redis: Redis;
  /** Keys or their namespace; default budgetKeysIn() ("fulcrum:v1"). */
  keys?: BudgetKeys | string;
  /** Each operation waits this long for Redis; default 1000 ms. */
  timeoutMs?: number;
  now?: () => number;
}

const REFUSALS: readonly RefusalReason[] = ["EXHAUSTED", "WOULD_EXCEED", "SUSPENDED"];
const MAX_TTL_MS = 24 * 3_600_000;
const DIMS = LIMIT_DIMENSIONS.length;
/** A reserve reply row: code, dimension, used, reserved, limit, then remaining per dimension. */
const ROW = 5 + DIMS;
/** A read reply row: used per dimension, then the 4 reserved sums. */
const READ_ROW = DIMS + 4;

export class BudgetLedger {
  readonly keys: BudgetKeys;
  readonly timeoutMs: number;
  private readonly now: () => number;
  private readonly scripts;

  constructor(private readonly options: BudgetLedgerOptions) {
    this.keys = typeof options.keys === "object" ? options.keys : budgetKeysIn(options.keys);
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.now = options.now ?? Date.now;
    const script = (lua: string) => options.redis.createScript<unknown>(lua);
    this.scripts = {
      reserve: script(RESERVE_LUA),
      release: script(RELEASE_LUA),
      settle: script(SETTLE_LUA),
      restore: script(RESTORE_LUA),
      read: script(READ_LUA),
    };
  }

  /**
   * Checks the estimate against every counter and reserves it on all of them, or on none.
   *
   * @example
   * const r = await ledger.reserve({ tenantId, counters, estimate, ttlMs: 300_000 });
   * if (!r.ok) deny("BUDGET_EXCEEDED", r.refused);
   */
  async reserve(request: ReserveRequest): Promise<ReserveResult> {
    const { tenantId, counters, estimate, ttlMs } = request;
    const nowMs = request.nowMs ?? this.now();
    checkTenant(tenantId);
    for (const [field, value] of Object.entries(estimate)) {
      if (!isCount(value)) throw invalid(`estimate.${field}`, "must be a non-negative integer");
    }
    if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_TTL_MS) {
      throw invalid("ttlMs", `must be an integer in (0, ${MAX_TTL_MS}]`);
    }
    counters.forEach(checkCounter);
    // Another key (tenant, namespace) would guard on state that is not this tenant's.
    const setKey = request.budgetSetKey;
    if (setKey !== undefined && setKey !== this.keys.budgetSet(tenantId)) {
      throw invalid("budgetSetKey", `must be ${this.keys.budgetSet(tenantId)}`);
    }
    // A key listed twice would be reserved twice but released once.
    if (new Set(counters.map((c) => c.key)).size !== counters.length) {
      throw invalid("counters", "lists a counter twice");
    }
    const expiresAtMs = nowMs + ttlMs;
    if (counters.length === 0) return { ok: true, expiresAtMs, remaining: [] };
    const reservationId = uuidv7(nowMs);
    const keys = counters.flatMap((c) => [c.key, this.keys.counterReservations(c.key)]);
    keys.push(this.keys.reservation(tenantId, reservationId));
    if (setKey !== undefined) keys.push(setKey);
    const args = [
      String(nowMs),
      String(expiresAtMs),
      reservationId,
      String(estimate.tokens),
      String(estimate.costMicros),
      String(estimate.llmCalls),
      String(estimate.toolCalls),
      JSON.stringify(counters.map((c) => c.key)),
      ...counters.flatMap((c) => [
        ...LIMIT_DIMENSIONS.map((d) => String(c.limits[d] ?? -1)),
        c.suspended ? "1" : "0",
        c.hard === false ? "0" : "1",
        String(c.expireAtMs ?? 0),
      ]),
    ];
    const raw = await this.run("reserving the budget", this.scripts.reserve.exec(keys, args));
    if (Array.isArray(raw) && raw.length === 1 && raw[0] === -1) {
      return { ok: false, unsynced: true, refused: [], remaining: [] };
    }
    const reply = integers(raw, 1 + counters.length * ROW);
    const remaining: CounterRemaining[] = [];
    const refused: CounterRefusal[] = [];
    counters.forEach((c, i) => {
      const row = reply.slice(1 + i * ROW, 1 + (i + 1) * ROW);
      const [code = 0, dim = 0, used = 0, reserved = 0, limit = 0] = row;
      const left: CounterRemaining["remaining"] = {};
      LIMIT_DIMENSIONS.forEach((d, j) => {
        const value = row[5 + j] ?? -1;
        if (value >= 0) left[d] = value;
      });
      remaining.push({ key: c.key, remaining: left });
      if (code > 0) {
        const dimension = dim > 0 ? LIMIT_DIMENSIONS[dim - 1] : undefined;
        refused.push({
          key: c.key,
          reason: REFUSALS[code - 1] ?? "SUSPENDED",
          ...(dimension ? { dimension } : {}),
          used,
          reserved,
          limit,
        });
      }
    });
    if (reply[0] !== 1) return { ok: false, refused, remaining };
    const reserved = Object.values(estimate).some((v) => v > 0);
    return { ok: true, ...(reserved ? { reservationId } : {}), expiresAtMs, remaining };
  }

  /**
   * Gives a reservation back (the decision was not ALLOW / WARN). Idempotent: false when
   * it was already released, settled or expired long ago.
   */
  async release(tenantId: string, reservationId: string): Promise<boolean> {
    checkTenant(tenantId);
    const keys = await this.reservationKeys(tenantId, reservationId);
    if (!keys) return false;
    const reply = await this.run("releasing the reservation", this.scripts.release.exec(keys, []));
    return reply === 1;
  }

  /**
   * Settles a call: releases its reservation (if still held) and raises each counter's
   * used values to PostgreSQL's absolute ones (max: a retry or a racing reconciliation
   * never counts twice).
   */
  async settle(request: SettleRequest): Promise<SettleResult> {
    checkTenant(request.tenantId);
    request.used.forEach(checkUsed);
    const held = request.reservationId
      ? await this.reservationKeys(request.tenantId, request.reservationId)
      : undefined;
    // Without a held reservation, a placeholder first key keeps the KEYS layout; the
    // script finds no `members` in it and releases nothing.
    const resKey = this.keys.reservation(request.tenantId, request.reservationId ?? "none");
    const pairs = held ? held.slice(1) : [];
    const keys = [held?.[0] ?? resKey, ...pairs, ...request.used.map((u) => u.key)];
    const args = [String(pairs.length / 2), ...request.used.flatMap(usedArgs)];
    const reply = integers(
      await this.run("settling usage", this.scripts.settle.exec(keys, args)),
      1 + request.used.length * DIMS,
    );
    return { released: reply[0] === 1, used: usageRows(reply.slice(1), request.used.length) };
  }

  /** Reconciliation: raises counters to PostgreSQL's absolute usage (max, idempotent). */
  async restore(used: readonly UsedValues[]): Promise<BudgetUsage[]> {
    used.forEach(checkUsed);
    if (used.length === 0) return [];
    const reply = integers(
      await this.run(
        "restoring counters",
        this.scripts.restore.exec(
          used.map((u) => u.key),
          used.flatMap(usedArgs),
        ),
      ),
      used.length * DIMS,
    );
    return usageRows(reply, used.length);
  }

  /** Used and outstanding reserved amounts of counters (absent counters read as 0). */
  async readCounters(keys: readonly string[], nowMs = this.now()): Promise<CounterState[]> {
    if (keys.length === 0) return [];
    const reply = integers(
      await this.run(
        "reading counters",
        this.scripts.read.exec(
          keys.flatMap((k) => [k, this.keys.counterReservations(k)]),
          [String(nowMs)],
        ),
      ),
      keys.length * READ_ROW,
    );
    return keys.map((key, i) => {
      const v = reply.slice(i * READ_ROW, (i + 1) * READ_ROW);
      const at = (j: number) => v[DIMS + j] ?? 0;
      return {
        key,
        used: toUsage(v.slice(0, DIMS)),
        reserved: { tokens: at(0), costMicros: at(1), llmCalls: at(2), toolCalls: at(3) },
      };
    });
  }

  /** [reservation key, counter / zset pairs…], or undefined when it is no longer held. */
  private async reservationKeys(tenantId: string, reservationId: string) {
    if (!/^[A-Za-z0-9-]{1,64}$/.test(reservationId)) {
      throw invalid("reservation_id", "is not a reservation id this ledger issued");
    }
    const key = this.keys.reservation(tenantId, reservationId);
    const stored = await this.run(
      "reading the reservation",
      this.options.redis.hget<unknown>(key, "counters"),
    );
    if (stored === null || stored === undefined) return undefined;
    const counters = typeof stored === "string" ? safeJson(stored) : stored;
    if (!Array.isArray(counters) || !counters.every((c) => typeof c === "string")) {
      throw new FulcrumError("Internal", `reservation ${reservationId} has no counter list`);
    }
    return [key, ...counters.flatMap((c: string) => [c, this.keys.counterReservations(c)])];
  }

  private async run<T>(what: string, call: Promise<T>): Promise<T> {
    try {
      return await withDeadline(call, this.timeoutMs, "Redis did not answer");
    } catch (error) {
      throw new FulcrumError(
        "Unavailable",
        `the budget ledger (Redis) failed while ${what}: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error, retry: true },
      );
    }
  }
}
