/**
 * What a reservation recorded, from its Redis hash (`reservation(t, id)`: `counters`, the
 * counter keys it was taken on, and `members`, `<resId>:<tok>:<costMicros>:<llm>:<tool>`;
 * core/budget/budget-keys.ts). RecordUsage uses it three ways:
 * - the budgets it was taken against are counted too, so a settle that names no workflow
 *   still charges the workflow budget its decision reserved on;
 * - its `env:<id>` counters name the envelope (and the ancestors) the call was governed
 *   by, so a settle by reservation id alone still charges that envelope;
 * - the calls it reserved are the floor of the calls counted (reservation-usage.ts).
 *
 * Only a hint: when Redis fails or the reservation has expired, the budgets PostgreSQL
 * finds for the request apply alone — the settle is not refused, PostgreSQL is the truth.
 */
import { withDeadline } from "../../../core/async/deadline.js";
import { isUuid } from "../../../core/ids/uuid.js";
import type { FunctionsDeps } from "../deps.js";

const LOOKUP_TIMEOUT_MS = 1000;
/** A reserved call count past this is no estimate the edge makes (usage-input's bound). */
const MAX_CALLS = 100_000;

export interface ReservationHint {
  /** The budgets (counter ids that are budget ids) it was reserved on, lower case. */
  budgetIds: string[];
  /** The envelopes of its `env:<id>` counters: the call's envelope and ancestors with limits. */
  envelopeIds: string[];
  /** The calls it reserved; undefined when the reservation is no longer in Redis. */
  reservedCalls?: { llmCalls: number; toolCalls: number };
}

export const NO_HINT: ReservationHint = { budgetIds: [], envelopeIds: [] };

export async function reservationHint(
  deps: Pick<FunctionsDeps, "redis" | "budgetKeys" | "logger">,
  tenantId: string,
  reservationId: string,
): Promise<ReservationHint> {
  let stored: Record<string, unknown> | null;
  try {
    stored = await withDeadline(
      deps.redis.hmget<Record<string, unknown>>(
        deps.budgetKeys.reservation(tenantId, reservationId),
        "counters",
        "members",
      ),
      LOOKUP_TIMEOUT_MS,
      "Redis did not answer",
    );
  } catch (error) {
    deps.logger.error("reservation lookup failed; counting against PostgreSQL's budgets only", {
      tenantId,
      reservationId,
      error: error instanceof Error ? error.message : String(error),
    });
    return NO_HINT;
  }
  if (!stored) return NO_HINT;
  // counter key: <ns>:budget:{<tenant>}:c:<counterId>:<periodStartMs>
  const prefix = deps.budgetKeys.counter(tenantId, "", 0).replace(/:0$/, "");
  const budgetIds = new Set<string>();
  const envelopeIds = new Set<string>();
  for (const key of parseList(stored.counters)) {
    if (!key.startsWith(prefix)) continue;
    const counterId = key.slice(prefix.length).replace(/:\d+$/, "");
    const envelopeId = counterId.startsWith("env:") ? counterId.slice(4) : undefined;
    if (envelopeId !== undefined) {
      if (isUuid(envelopeId)) envelopeIds.add(envelopeId.toLowerCase());
    } else if (isUuid(counterId)) budgetIds.add(counterId.toLowerCase());
  }
  const reservedCalls = parseMember(stored.members);
  return {
    budgetIds: [...budgetIds],
    envelopeIds: [...envelopeIds],
    ...(reservedCalls ? { reservedCalls } : {}),
  };
}

/** The calls of `<resId>:<tok>:<costMicros>:<llm>:<tool>` (reserve.ts writes it). */
function parseMember(member: unknown): ReservationHint["reservedCalls"] {
  if (typeof member !== "string") return undefined;
  const parts = member.split(":");
  if (parts.length < 5) return undefined;
  const calls = (s: string | undefined) => {
    const v = Number(s);
    return Number.isSafeInteger(v) && v >= 0 && v <= MAX_CALLS ? v : 0;
  };
  return { llmCalls: calls(parts.at(-2)), toolCalls: calls(parts.at(-1)) };
}

function parseList(stored: unknown): string[] {
  let value = stored;
  if (typeof value === "string") {
    try {
      value = JSON.parse(value);
    } catch {
      return [];
    }
  }
  return Array.isArray(value) ? value.filter((k): k is string => typeof k === "string") : [];
}
