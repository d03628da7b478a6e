import type { BudgetKeys } from "../../../core/budget/budget-keys.js";
import type { BudgetLedger } from "../../../core/budget/ledger.js";
import type { Logger } from "../../../core/logging/logger.js";
import type { Metrics } from "../../../core/observability/metrics.js";
import { type BudgetCheckResult, checkOf } from "./budget-checks.js";
import {
  type BudgetSubject,
  counterExpiry,
  type Estimate,
  envelopeRefusal,
  estimateOf,
  type PlannedCounter,
  selectCounters,
} from "./budget-plan.js";
import type { BudgetSetSource } from "./budget-set-source.js";
import type { EnvelopeSource } from "./envelope-source.js";

export type { BudgetCheckResult } from "./budget-checks.js";

/**
 * Reservations by outcome: reserved, checked (nothing to reserve), refused, failed,
 * unsynced (Redis lost the tenant's BudgetSet), released.
 */
export const BUDGET_RESERVATIONS_METRIC = "fulcrum_edge_budget_reservations_total";

/** The DENY's message when Redis lost the tenant's state (decide.ts adds "budgets fail closed"). */
export const UNSYNCED_MESSAGE =
  "the tenant's budgets are being restored from PostgreSQL (Redis lost them); retry shortly";

/** What the budgets and the envelope said about one call. */
export interface BudgetOutcome {
  /** reserved: every budget admitted the call (a reservation is held when it asked for any). */
  kind: "reserved" | "refused" | "envelope" | "failed";
  estimate: Estimate;
  reservationId?: string;
  expiresAtMs?: number;
  checks: BudgetCheckResult[];
  /** The refusal or failure, for people (refused, envelope, failed). */
  message?: string;
}

/** Read before the policies are evaluated: the set, the envelope, the counters. */
export interface BudgetPreparation {
  estimate: Estimate;
  counters: PlannedCounter[];
  envelopeRefusal?: string;
  failed?: string;
  /**
   * The tenant's BudgetSet was read (or kept from a good read): the reservation guards on
   * it still being in Redis. A tenant that never had one (envelope limits only, before
   * any publish) is not guarded, or it would be refused until reconciliation ran.
   */
  setPublished?: boolean;
}

export interface BudgetGateOptions {
  sets: BudgetSetSource;
  envelopes: EnvelopeSource;
  ledger: BudgetLedger;
  keys: BudgetKeys;
  /** BUDGET_RESERVATION_TTL_SECONDS in ms. */
  ttlMs: number;
  metrics: Metrics;
  logger: Logger;
}

/**
 * The edge's budget step (issue 6, flow 1): `prepare` reads the tenant's BudgetSet
 * (cached) and the envelope the call names, and picks the counters; `reserve` checks
 * and reserves the estimate on all of them in one ledger script, concurrently with
 * the policy evaluation; `release` gives a reservation back when the final decision
 * is not ALLOW / WARN. Neither throws: a Redis failure is an outcome (`failed`) the
 * decision turns into a fail-closed DENY.
 */
export class BudgetGate {
  constructor(private readonly options: BudgetGateOptions) {}

  async prepare(
    tenantId: string,
    subject: BudgetSubject,
    nowMs: number,
  ): Promise<BudgetPreparation> {
    const { sets, envelopes } = this.options;
    const [set, chain] = await Promise.all([
      settle(sets.get(tenantId)),
      subject.envelopeId ? settle(envelopes.get(tenantId, subject.envelopeId)) : undefined,
    ]);
    const estimate = estimateOf(subject, set.ok ? set.value : null);
    if (!set.ok) return { estimate, counters: [], failed: describe(set.error) };
    if (chain && !chain.ok) {
      return {
        estimate,
        counters: [],
        failed: `the envelope ${subject.envelopeId} could not be read (${describe(chain.error)})`,
      };
    }
    const envelope = chain?.value;
    const refusal = envelope ? envelopeRefusal(envelope.envelope, subject, nowMs) : undefined;
    if (refusal) return { estimate, counters: [], envelopeRefusal: refusal };
    // The envelope's workflow governs when the call names none.
    const scoped =
      envelope && !subject.workflowId && envelope.envelope.workflowId
        ? { ...subject, workflowId: envelope.envelope.workflowId }
        : subject;
    const levels = envelope
      ? [{ id: envelope.envelope.id, record: envelope.envelope }, ...envelope.ancestors]
      : [];
    const setPublished = set.value !== null;
    try {
      return { estimate, counters: selectCounters(set.value, scoped, levels, nowMs), setPublished };
    } catch (error) {
      // A budget whose period cannot be computed is a broken set: fail closed, never skip it.
      return {
        estimate,
        counters: [],
        failed: `the tenant's budgets are invalid (${describe(error)})`,
      };
    }
  }

  /** Checks and reserves; undefined when no counter applies (nothing was asked of Redis). */
  async reserve(
    tenantId: string,
    prep: BudgetPreparation,
    nowMs: number,
  ): Promise<BudgetOutcome | undefined> {
    const { estimate } = prep;
    if (prep.failed !== undefined) {
      this.count("failed");
      return { kind: "failed", estimate, checks: [], message: prep.failed };
    }
    if (prep.envelopeRefusal !== undefined) {
      return { kind: "envelope", estimate, checks: [], message: prep.envelopeRefusal };
    }
    if (prep.counters.length === 0) return undefined;
    const { ledger, keys, ttlMs } = this.options;
    const specs = prep.counters.map((c) => ({
      key: keys.counter(tenantId, c.counterId, c.periodStartMs),
      limits: c.limits,
      suspended: c.suspended,
      ...(c.hard === false ? { hard: false } : {}),
      expireAtMs: counterExpiry(c, nowMs),
    }));
    let result: Awaited<ReturnType<BudgetLedger["reserve"]>>;
    try {
      result = await ledger.reserve({
        tenantId,
        counters: specs,
        estimate,
        ttlMs,
        nowMs,
        ...(prep.setPublished ? { budgetSetKey: keys.budgetSet(tenantId) } : {}),
      });
    } catch (error) {
      this.count("failed");
      this.options.logger.error("budget reservation failed", { tenantId, error });
      return {
        kind: "failed",
        estimate,
        checks: [],
        message: `budgets could not be checked (${describe(error)})`,
      };
    }
    if (!result.ok && result.unsynced) {
      this.count("unsynced");
      this.options.logger.error("budget set missing from Redis; failing closed until restored", {
        tenantId,
      });
      return { kind: "failed", estimate, checks: [], message: UNSYNCED_MESSAGE };
    }
    const refusals = result.ok ? [] : result.refused;
    const checks = prep.counters.map((c, i) =>
      checkOf(
        c,
        result.remaining[i],
        refusals.find((r) => r.key === specs[i]?.key),
        estimate,
      ),
    );
    if (!result.ok) {
      this.count("refused");
      const reasons = checks.filter((c) => c.exceeded).map((c) => c.reason);
      return { kind: "refused", estimate, checks, message: reasons.join("; ") };
    }
    this.count(result.reservationId ? "reserved" : "checked");
    return {
      kind: "reserved",
      estimate,
      checks,
      ...(result.reservationId
        ? { reservationId: result.reservationId, expiresAtMs: result.expiresAtMs }
        : {}),
    };
  }

  /** Best effort (an unreleased reservation expires at its TTL); for waitUntil. */
  async release(tenantId: string, reservationId: string): Promise<void> {
    try {
      // false: it had expired or been settled already; nothing was held any more.
      const released = await this.options.ledger.release(tenantId, reservationId);
      this.count(released ? "released" : "already_gone");
    } catch (error) {
      this.count("release_failed");
      this.options.logger.error("budget reservation not released; it expires at its TTL", {
        tenantId,
        reservationId,
        error,
      });
    }
  }

  private count(outcome: string): void {
    this.options.metrics.increment(BUDGET_RESERVATIONS_METRIC, { outcome });
  }
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

async function settle<T>(value: Promise<T> | T): Promise<Settled<T>> {
  try {
    return { ok: true, value: await value };
  } catch (error) {
    return { ok: false, error };
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
