/**
 * RecordUsage's request checked beyond protovalidate and turned into integer units
 * (tokens, calls, micro-USD, milliseconds). protovalidate already bounds every number;
 * these checks repeat what the ledger relies on (a NaN or a negative count would corrupt
 * a counter for the rest of its period) and add what a field rule cannot express: the
 * time window of `occurred_at` and a model to price tokens with.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { invalid } from "../../../core/errors/fulcrum-error.js";
import type { RecordUsageRequest } from "../../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";

/** How old usage may be: older than this is a replay or a lost batch, not a settle. */
export const MAX_USAGE_AGE_MS = 7 * 24 * 3_600_000;
/** Client clocks run ahead a little; more than this is a wrong timestamp. */
export const CLOCK_SKEW_MS = 60_000;
/** The largest token count one call may report (protovalidate's bound, repeated). */
export const MAX_TOKENS = 1_000_000_000;
const MAX_CALLS = 100_000;
const MAX_COST_USD = 100_000;
const MAX_EXECUTION_MS = 7 * 24 * 3_600_000;

export interface UsageInput {
  reservationId?: string;
  envelopeId?: string;
  workflowId?: string;
  modelId?: string;
  inputTokens: number;
  outputTokens: number;
  /** The caller's cost; undefined: priced from the tenant's table for `modelId`. */
  costMicros?: number;
  llmCalls: number;
  toolCalls: number;
  executionMs: number;
  occurredAt: Date;
  /** `res:<reservation>` or `key:<idempotency key>`; undefined: every call counts. */
  dedupeKey?: string;
}

function count(field: string, value: number | bigint, max: number): number {
  const n = typeof value === "bigint" ? Number(value) : value;
  if (!Number.isSafeInteger(n) || n < 0 || n > max) {
    throw invalid(field, `must be a whole number from 0 to ${max}, got ${String(value)}`);
  }
  return n;
}

/**
 * @throws FulcrumError Invalid naming the field.
 * @example const input = usageInput(req, deps.now());
 */
export function usageInput(req: RecordUsageRequest, now: Date): UsageInput {
  const inputTokens = count("input_tokens", req.inputTokens, MAX_TOKENS);
  const outputTokens = count("output_tokens", req.outputTokens, MAX_TOKENS);
  const llmCalls = count("llm_calls", req.llmCalls, MAX_CALLS);
  const toolCalls = count("tool_calls", req.toolCalls, MAX_CALLS);
  let executionMs = 0;
  if (req.executionTime) {
    const d = req.executionTime;
    executionMs = Number(d.seconds) * 1000 + Math.ceil(d.nanos / 1e6);
    if (!Number.isSafeInteger(executionMs) || executionMs < 0 || executionMs > MAX_EXECUTION_MS) {
      throw invalid("execution_time", "must be from 0 to 7 days (604800s)");
    }
  }
  let costMicros: number | undefined;
  if (req.costUsd !== undefined) {
    const usd = req.costUsd;
    if (!Number.isFinite(usd) || usd < 0 || usd > MAX_COST_USD) {
      throw invalid("cost_usd", `must be a finite amount from 0 to ${MAX_COST_USD} USD`);
    }
    // Rounded up: a fraction of a micro-USD is charged, as prices.ts does.
    costMicros = Math.ceil(Math.round(usd * 1e9) / 1e3);
  }
  const modelId = req.modelId.trim() || undefined;
  // Tokens without a cost must be priced, and a price needs a model: charging the
  // fallback price for an unnamed model would silently misstate the bill.
  if (costMicros === undefined && inputTokens + outputTokens > 0 && !modelId) {
    throw invalid("model_id", "is required to price tokens when cost_usd is not set");
  }
  if (
    inputTokens + outputTokens === 0 &&
    costMicros === undefined &&
    llmCalls === 0 &&
    toolCalls === 0 &&
    executionMs === 0
  ) {
    throw invalid("input_tokens", "nothing to record: report tokens, cost, calls or time");
  }
  const nowMs = now.getTime();
  let occurredAt = now;
  if (req.occurredAt) {
    occurredAt = timestampDate(req.occurredAt);
    const at = occurredAt.getTime();
    if (!Number.isFinite(at) || at > nowMs + CLOCK_SKEW_MS) {
      throw invalid("occurred_at", "is in the future; send when the usage happened");
    }
    if (at < nowMs - MAX_USAGE_AGE_MS) {
      throw invalid("occurred_at", "is more than 7 days ago; usage that old cannot be recorded");
    }
  }
  const reservationId = req.reservationId || undefined;
  // The ledger's reservation ids (UUIDv7); anything else cannot have been issued by it.
  if (reservationId && !/^[A-Za-z0-9-]{1,64}$/.test(reservationId)) {
    throw invalid("reservation_id", "is not a reservation id a decision returned");
  }
  const key = req.idempotencyKey || undefined;
  return {
    ...(reservationId ? { reservationId } : {}),
    // Checked against the tenant's envelopes in the transaction: a malformed id names no
    // envelope, so it is NotFound there like an unknown one (as EnvelopeService does).
    ...(req.envelopeId ? { envelopeId: req.envelopeId } : {}),
    ...(req.workflowId ? { workflowId: req.workflowId } : {}),
    ...(modelId ? { modelId } : {}),
    inputTokens,
    outputTokens,
    ...(costMicros !== undefined ? { costMicros } : {}),
    llmCalls,
    toolCalls,
    executionMs,
    occurredAt,
    // A reservation is settled once whatever key the retry carries.
    ...(reservationId
      ? { dedupeKey: `res:${reservationId}` }
      : key
        ? { dedupeKey: `key:${key}` }
        : {}),
  };
}
