/**
 * Input checks and reply decoding of BudgetLedger (ledger.ts): bad input is a
 * FulcrumError Invalid naming the field; a reply of the wrong shape is Internal.
 */
import { FulcrumError, invalid } from "../errors/fulcrum-error.js";
import type { CounterSpec, UsedValues } from "./ledger-types.js";
import { type BudgetUsage, isCount, LIMIT_DIMENSIONS, type LimitDimension } from "./limits.js";

export function checkTenant(tenantId: string): void {
  if (typeof tenantId !== "string" || !/^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/.test(tenantId)) {
    throw invalid("tenant_id", "must be a tenant id");
  }
}

export function checkCounter(c: CounterSpec, i: number): void {
  if (typeof c.key !== "string" || c.key.length === 0)
    throw invalid(`counters[${i}].key`, "is empty");
  for (const [dim, limit] of Object.entries(c.limits)) {
    if (limit !== undefined && !isCount(limit)) {
      throw invalid(`counters[${i}].limits.${dim}`, "must be a non-negative integer");
    }
  }
  if (c.expireAtMs != null && !isCount(c.expireAtMs)) {
    throw invalid(`counters[${i}].expireAtMs`, "must be a time in ms");
  }
}

/** The counter HASH's used fields, in LIMIT_DIMENSIONS order (the scripts' USED). */
const USED_FIELDS = ["u_tok", "u_in", "u_out", "u_cost", "u_llm", "u_tool", "u_exec"] as const;

export function checkUsed(u: UsedValues, i: number): void {
  if (typeof u.key !== "string" || u.key.length === 0) throw invalid(`used[${i}].key`, "is empty");
  for (const f of USED_FIELDS) {
    if (!isCount(u[f])) throw invalid(`used[${i}].${f}`, "must be a non-negative integer");
  }
  if (u.expireAtMs != null && !isCount(u.expireAtMs)) {
    throw invalid(`used[${i}].expireAtMs`, "must be a time in ms");
  }
}

export function usedArgs(u: UsedValues): string[] {
  return [...USED_FIELDS.map((f) => String(u[f])), String(u.expireAtMs ?? 0)];
}

export function toUsage(v: readonly number[]): BudgetUsage {
  const usage = {} as BudgetUsage;
  LIMIT_DIMENSIONS.forEach((d: LimitDimension, j) => {
    usage[d] = v[j] ?? 0;
  });
  return usage;
}

export function usageRows(v: readonly number[], count: number): BudgetUsage[] {
  return Array.from({ length: count }, (_, i) =>
    toUsage(v.slice(i * USED_FIELDS.length, (i + 1) * USED_FIELDS.length)),
  );
}

/** A script's reply as the integers it must be; anything else is a broken store. */
export function integers(reply: unknown, length: number): number[] {
  if (!Array.isArray(reply) || reply.length !== length || !reply.every(Number.isInteger)) {
    throw new FulcrumError("Internal", `unexpected budget script reply ${JSON.stringify(reply)}`);
  }
  return reply as number[];
}

export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
