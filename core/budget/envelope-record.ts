/**
 * The `EnvelopeRecord` functions (EnvelopeService) write to Redis after every committed
 * change of an envelope, and the edge reads to govern calls that name it: its status,
 * deadline, allowed models and tools, its own limits (counter `env:<id>`) and its
 * ancestors, whose limits apply too (a child can never exceed its parent).
 */
import { decodeStored, RecordReader } from "./record-reader.js";

/** Not final: the envelope may still run or change (its record must stay in Redis). */
const OPEN = ["PENDING", "AUTHORIZED", "RUNNING", "PAUSED"] as const;
/** Final: the envelope never changes again (its record may expire). */
const FINAL = [
  "COMPLETED",
  "FAILED",
  "TERMINATED",
  "BUDGET_EXCEEDED",
  "POLICY_VIOLATION",
  "TIMEOUT",
] as const;

/** Every status, in lifecycle order (db/schema's column type and CHECK list the same). */
export const ENVELOPE_STATUSES = [...OPEN, ...FINAL] as const;
export type EnvelopeStatusName = (typeof ENVELOPE_STATUSES)[number];

export const ENVELOPE_OPEN_STATUSES: readonly EnvelopeStatusName[] = OPEN;
export const ENVELOPE_FINAL_STATUSES: readonly EnvelopeStatusName[] = FINAL;

/** The statuses a governed call may run in (and a child envelope may be opened under). */
export const ENVELOPE_ACTIVE_STATUSES: readonly EnvelopeStatusName[] = ["AUTHORIZED", "RUNNING"];

export function isEnvelopeActive(status: EnvelopeStatusName): boolean {
  return ENVELOPE_ACTIVE_STATUSES.includes(status);
}

export function isEnvelopeFinal(status: EnvelopeStatusName): boolean {
  return ENVELOPE_FINAL_STATUSES.includes(status);
}

export interface EnvelopeLimits {
  tokens?: number;
  costMicros?: number;
  llmCalls?: number;
  toolCalls?: number;
}

export interface EnvelopeRecord {
  id: string;
  status: EnvelopeStatusName;
  /** Empty when the envelope names no workflow. */
  workflowId: string;
  parentId?: string;
  /** Parent first, then its parent, … up to the root. */
  ancestors: string[];
  /** The governance budget the envelope draws on, if any. */
  budgetId?: string;
  limits: EnvelopeLimits;
  allowedModels: string[];
  allowedTools: string[];
  deadlineMs?: number;
  updatedAtMs: number;
}

const ENVELOPE_LIMITS = ["tokens", "costMicros", "llmCalls", "toolCalls"] as const;

/**
 * Checks a stored envelope record (a JSON string or the parsed value) field by field.
 * Throws FulcrumError Internal naming the first wrong field.
 */
export function parseEnvelopeRecord(raw: unknown): EnvelopeRecord {
  const r = new RecordReader("the stored envelope record");
  const o = r.object(decodeStored(raw, r), "(record)");
  const parentId = r.optionalString(o.parentId, "parentId");
  const ancestors = r.strings(o.ancestors, "ancestors");
  if (parentId !== (ancestors[0] ?? undefined)) {
    r.fail("ancestors", "must start with parentId (and be empty without one)");
  }
  const rawLimits = r.object(o.limits, "limits");
  const limits: EnvelopeLimits = {};
  for (const key of Object.keys(rawLimits)) {
    if (!(ENVELOPE_LIMITS as readonly string[]).includes(key))
      r.at("limits").fail(key, "is not a limit");
  }
  for (const dim of ENVELOPE_LIMITS) {
    const limit = r.at("limits").optionalCount(rawLimits[dim], dim);
    if (limit !== undefined) limits[dim] = limit;
  }
  const budgetId = r.optionalString(o.budgetId, "budgetId");
  const deadlineMs = r.optionalCount(o.deadlineMs, "deadlineMs");
  return {
    id: r.string(o.id, "id"),
    status: r.oneOf(o.status, "status", ENVELOPE_STATUSES),
    workflowId: r.text(o.workflowId, "workflowId"),
    ...(parentId !== undefined ? { parentId } : {}),
    ancestors,
    ...(budgetId !== undefined ? { budgetId } : {}),
    limits,
    allowedModels: r.strings(o.allowedModels, "allowedModels"),
    allowedTools: r.strings(o.allowedTools, "allowedTools"),
    ...(deadlineMs !== undefined ? { deadlineMs } : {}),
    updatedAtMs: r.count(o.updatedAtMs, "updatedAtMs"),
  };
}
