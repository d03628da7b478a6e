/**
 * Which budgets a reservation was taken against, from its Redis record
 * (`reservation(t, id)` → `counters`: the counter keys, budgetKeys.counter). RecordUsage
 * counts the usage against them too, so a settle that names no workflow still charges
 * the workflow budget its decision reserved on.
 *
 * Only a hint: when Redis fails or the reservation has expired, the budgets PostgreSQL
 * finds for the request apply alone — the settle is not refused, PostgreSQL is the truth.
 */
import { withDeadline } from "../../../core/async/deadline.js";
import { isUuid } from "../../../core/ids/uuid.js";
import type { FunctionsDeps } from "../deps.js";

const LOOKUP_TIMEOUT_MS = 1000;

export async function reservationBudgetIds(
  deps: Pick<FunctionsDeps, "redis" | "budgetKeys" | "logger">,
  tenantId: string,
  reservationId: string,
): Promise<string[]> {
  let stored: unknown;
  try {
    stored = await withDeadline(
      deps.redis.hget<unknown>(deps.budgetKeys.reservation(tenantId, reservationId), "counters"),
      LOOKUP_TIMEOUT_MS,
      "Redis did not answer",
    );
  } catch (error) {
    deps.logger.error("reservation lookup failed; counting against PostgreSQL's budgets only", {
      tenantId,
      reservationId,
      error: error instanceof Error ? error.message : String(error),
    });
    return [];
  }
  const keys = parseList(stored);
  // counter key: <ns>:budget:{<tenant>}:c:<counterId>:<periodStartMs>
  const prefix = deps.budgetKeys.counter(tenantId, "", 0).replace(/:0$/, "");
  const ids = new Set<string>();
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const counterId = key.slice(prefix.length).replace(/:\d+$/, "");
    // `env:<id>` counters are envelopes' own limits, found through the envelope chain.
    if (isUuid(counterId)) ids.add(counterId.toLowerCase());
  }
  return [...ids];
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
