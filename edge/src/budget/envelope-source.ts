import type { Redis } from "@upstash/redis";
import { withDeadline } from "../../../core/async/deadline.js";
import {
  type BudgetKeys,
  type EnvelopeRecord,
  parseEnvelopeRecord,
} from "../../../core/budget/budget-keys.js";
import { Lru } from "../../../core/cache/lru.js";

/** What never changes after an envelope is created: its draw on budgets and its limits. */
export type EnvelopeTerms = Pick<EnvelopeRecord, "budgetId" | "limits">;

/** The envelope a call names, and each ancestor's terms (parent first; undefined: no record). */
export interface EnvelopeChain {
  envelope: EnvelopeRecord;
  ancestors: { id: string; record?: EnvelopeTerms }[];
}

export interface EnvelopeSourceOptions {
  redis: Redis;
  keys: BudgetKeys;
  timeoutMs?: number;
  /** Ancestors' terms cached per isolate; default 4096. */
  maxCachedTerms?: number;
}

/**
 * Reads the EnvelopeRecord a call names, fresh on every call (its status and deadline
 * must take effect at once), in the same tick as the decision's other first reads so
 * auto-pipelining sends them together. Ancestors' budget ids and limits are immutable
 * (EnvelopeService only changes status), so they are cached per isolate: a chain costs
 * one MGET the first time it is seen, nothing after.
 */
export class EnvelopeSource {
  private readonly timeoutMs: number;
  private readonly terms: Lru<string, EnvelopeTerms | null>;

  constructor(private readonly options: EnvelopeSourceOptions) {
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.terms = new Lru({ maxEntries: options.maxCachedTerms ?? 4096 });
  }

  /**
   * The envelope `envelopeId` of the tenant and its ancestors; undefined when no record
   * exists (an unknown id brings no envelope governance). Throws when Redis fails or a
   * record is corrupt (the caller fails closed).
   */
  async get(tenantId: string, envelopeId: string): Promise<EnvelopeChain | undefined> {
    const { redis, keys } = this.options;
    const raw = await withDeadline(
      redis.get<unknown>(keys.envelope(tenantId, envelopeId)),
      this.timeoutMs,
      "Redis did not answer",
    );
    if (raw === null || raw === undefined) return undefined;
    const envelope = parseEnvelopeRecord(raw);
    this.remember(tenantId, envelope);
    const missing = envelope.ancestors.filter((id) => !this.terms.has(`${tenantId}/${id}`));
    if (missing.length > 0) {
      const found = await withDeadline(
        redis.mget<unknown[]>(...missing.map((id) => keys.envelope(tenantId, id))),
        this.timeoutMs,
        "Redis did not answer",
      );
      for (const value of found) {
        if (value !== null && value !== undefined)
          this.remember(tenantId, parseEnvelopeRecord(value));
      }
    }
    return {
      envelope,
      ancestors: envelope.ancestors.map((id) => {
        const record = this.terms.get(`${tenantId}/${id}`) ?? undefined;
        return record ? { id, record } : { id };
      }),
    };
  }

  private remember(tenantId: string, record: EnvelopeRecord): void {
    this.terms.set(`${tenantId}/${record.id}`, {
      ...(record.budgetId !== undefined ? { budgetId: record.budgetId } : {}),
      limits: record.limits,
    });
  }
}
