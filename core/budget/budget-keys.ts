/**
 * The Redis keys of budgets, reservations, envelopes and approvals: what functions write
 * and the edge reads, in the same namespace as the policy keys
 * (core/distribution/policy-keys.ts). One definition for both sides.
 *
 * Keys the ledger's scripts touch together (a tenant's counters, their reservation sets
 * and its reservations) share the hash tag `{<tenant>}`, so each script's keys sit in one
 * slot even on a clustered Redis.
 *
 * - `budgetSet(t)`: JSON {@link BudgetSet}.
 * - `counter(t, counterId, periodStartMs)`: HASH of one budget's period — used
 *   `u_tok u_in u_out u_cost u_llm u_tool u_exec` (absolute values from PostgreSQL; u_exec
 *   in ms) and reserved sums `r_tok r_cost r_llm r_tool` (execution time is never
 *   reserved). counterId is the budget id or `env:<envelopeId>`.
 * - `counterReservations(counterKey)`: ZSET `<resId>:<tok>:<cost>:<llm>:<tool>` → expiresAtMs.
 * - `reservation(t, resId)`: HASH {members, counters (JSON list of counter keys), expiresAt}.
 * - `envelope(t, id)`: JSON {@link EnvelopeRecord}.
 * - `approvalPending / approvalGrant / approvalRejected / approvalConsumed(t, argsHash)`.
 */
import { DEFAULT_POLICY_KEY_NAMESPACE } from "../distribution/policy-keys.js";

export type { BudgetDef, BudgetScope, BudgetSet } from "./budget-set.js";
export { BUDGET_SCOPES, parseBudgetDef, parseBudgetSet } from "./budget-set.js";
export type { EnvelopeLimits, EnvelopeRecord, EnvelopeStatusName } from "./envelope-record.js";
export {
  ENVELOPE_ACTIVE_STATUSES,
  ENVELOPE_FINAL_STATUSES,
  ENVELOPE_OPEN_STATUSES,
  ENVELOPE_STATUSES,
  isEnvelopeActive,
  isEnvelopeFinal,
  parseEnvelopeRecord,
} from "./envelope-record.js";

export type BudgetKeys = ReturnType<typeof budgetKeysIn>;

/** The counter id of an envelope's own limits (period INFINITE). */
export const envelopeCounterId = (envelopeId: string) => `env:${envelopeId}`;

/** Terminal envelopes' records are kept this long, then expire. */
export const TERMINAL_ENVELOPE_TTL_MS = 7 * 24 * 3_600_000;

/**
 * @example
 * const keys = budgetKeysIn("fulcrum:v1");
 * const set = parseBudgetSet(await redis.get(keys.budgetSet(tenantId)));
 */
export function budgetKeysIn(namespace: string = DEFAULT_POLICY_KEY_NAMESPACE) {
  const tenant = (t: string) => `${namespace}:budget:{${t}}`;
  return {
    namespace,
    budgetSet: (tenantId: string) => `${tenant(tenantId)}:set`,
    counter: (tenantId: string, counterId: string, periodStartMs: number) =>
      `${tenant(tenantId)}:c:${counterId}:${periodStartMs}`,
    counterReservations: (counterKey: string) => `${counterKey}:res`,
    reservation: (tenantId: string, reservationId: string) =>
      `${tenant(tenantId)}:res:${reservationId}`,
    envelope: (tenantId: string, envelopeId: string) =>
      `${namespace}:envelope:${tenantId}:${envelopeId}`,
    approvalPending: (tenantId: string, argsHash: string) =>
      `${namespace}:approval:${tenantId}:pending:${argsHash}`,
    approvalGrant: (tenantId: string, argsHash: string) =>
      `${namespace}:approval:${tenantId}:grant:${argsHash}`,
    approvalRejected: (tenantId: string, argsHash: string) =>
      `${namespace}:approval:${tenantId}:rejected:${argsHash}`,
    /** The id of the last grant the edge consumed for this call, so reconciliation never re-grants it. */
    approvalConsumed: (tenantId: string, argsHash: string) =>
      `${namespace}:approval:${tenantId}:consumed:${argsHash}`,
  } as const;
}
