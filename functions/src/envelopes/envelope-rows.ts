/**
 * An `envelopes` row and the Envelope message the API answers with. The cost summary is
 * the row's `cost_summary` jsonb, which RecordUsage keeps up to date for the envelope
 * and every ancestor (snake_case keys; a key it has not written reads as 0), plus the
 * execution time: wall clock from started_at to completed_at (or now while running).
 * An envelope past its deadline is answered as the TIMEOUT it is (envelope-deadline.ts),
 * even before that transition is written.
 */
import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { eq } from "drizzle-orm";
import { notFound } from "../../../core/errors/fulcrum-error.js";
import { isUuid } from "../../../core/ids/uuid.js";
import { envelopes } from "../../../db/schema/index.js";
import {
  type CostSummary,
  CostSummarySchema,
  ModelCostSchema,
} from "../../../proto/gen/fulcrum/cost/v1/spend_pb.js";
import {
  type Envelope,
  EnvelopeSchema,
  EnvelopeStatus,
  Framework,
  TraceContextSchema,
} from "../../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";
import type { Tx } from "../db/tenant-transaction.js";
import { summaryUsage } from "../usage/envelope-usage.js";
import { asOf } from "./envelope-deadline.js";
import { governanceFromJson, governanceToProto } from "./envelope-governance.js";

export type EnvelopeRow = typeof envelopes.$inferSelect;

export const envelopeNotFound = (id: string) => notFound(`envelope ${id} not found in this tenant`);

/**
 * The row, locked for update when `lock` (a status change). An id that is not a UUID
 * cannot name an envelope: NotFound, like an unknown one.
 */
export async function loadEnvelope(
  tx: Tx,
  id: string,
  options: { lock?: boolean } = {},
): Promise<EnvelopeRow> {
  if (!isUuid(id)) throw envelopeNotFound(id);
  const query = tx.select().from(envelopes).where(eq(envelopes.id, id.toLowerCase()));
  const [row] = options.lock ? await query.for("update") : await query;
  if (!row) throw envelopeNotFound(id);
  return row;
}

const n = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const big = (v: unknown): bigint => BigInt(Math.max(0, Math.trunc(n(v))));

/** cost_summary jsonb → CostSummary; cost may be kept as micro-USD or USD. */
export function costSummaryOf(stored: EnvelopeRow, now: Date): CostSummary {
  const row = asOf(stored, now);
  const j = (row.costSummary ?? {}) as Record<string, unknown>;
  // The totals read as RecordUsage reads them when it adds a call (one reading of the jsonb).
  const used = summaryUsage(j);
  const models = Array.isArray(j.model_costs) ? j.model_costs : [];
  const end = row.completedAt ?? now;
  // Wall clock since RUNNING; an envelope never started reports its calls' summed time.
  const execMs = row.startedAt
    ? Math.max(0, end.getTime() - row.startedAt.getTime())
    : Math.trunc(n(j.execution_ms));
  return create(CostSummarySchema, {
    envelopeId: row.id,
    tenantId: row.tenantId,
    workflowId: row.workflowId,
    budgetId: row.budgetId ?? "",
    inputTokens: BigInt(used.inputTokens),
    outputTokens: BigInt(used.outputTokens),
    totalTokens: BigInt(used.tokens),
    costUsd: used.costMicros / 1_000_000,
    llmCalls: BigInt(used.llmCalls),
    toolCalls: BigInt(used.toolCalls),
    modelCosts: models
      .filter((m): m is Record<string, unknown> => typeof m === "object" && m !== null)
      .map((m) =>
        create(ModelCostSchema, {
          modelId: typeof m.model_id === "string" ? m.model_id : "",
          inputTokens: big(m.input_tokens),
          outputTokens: big(m.output_tokens),
          costUsd: "cost_micros" in m ? n(m.cost_micros) / 1_000_000 : n(m.cost_usd),
          callCount: big(m.call_count),
        }),
      ),
    executionTime: create(DurationSchema, {
      seconds: BigInt(Math.floor(execMs / 1000)),
      nanos: (execMs % 1000) * 1_000_000,
    }),
    updatedAt: timestampFromDate(
      typeof j.updated_at === "string" && !Number.isNaN(Date.parse(j.updated_at))
        ? new Date(j.updated_at)
        : row.updatedAt,
    ),
  });
}

function strings(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, s] of Object.entries((v ?? {}) as Record<string, unknown>)) {
    if (typeof s === "string") out[k] = s;
  }
  return out;
}

export function frameworkName(f: Framework): string {
  return Framework[f] ?? "UNSPECIFIED";
}

export function toEnvelopeProto(stored: EnvelopeRow, now: Date): Envelope {
  const row = asOf(stored, now);
  const trace = strings(row.traceContext);
  const flags = Number((row.traceContext as Record<string, unknown>)?.trace_flags ?? 0);
  const framework = (Framework as unknown as Record<string, number>)[row.framework];
  return create(EnvelopeSchema, {
    envelopeId: row.id,
    tenantId: row.tenantId,
    workflowId: row.workflowId,
    executionId: row.executionId,
    governance: governanceToProto(governanceFromJson(row.governance)),
    framework: framework ?? Framework.UNSPECIFIED,
    status: EnvelopeStatus[row.status],
    statusReason: row.statusReason ?? "",
    costSummary: costSummaryOf(row, now),
    parentEnvelopeId: row.parentEnvelopeId ?? "",
    metadata: strings(row.metadata),
    ...(Object.keys(trace).length > 0 || flags
      ? {
          traceContext: create(TraceContextSchema, {
            traceId: trace.trace_id ?? "",
            spanId: trace.span_id ?? "",
            traceFlags: Number.isInteger(flags) ? flags : 0,
            traceState: trace.trace_state ?? "",
          }),
        }
      : {}),
    createdAt: timestampFromDate(row.createdAt),
    ...(row.startedAt ? { startedAt: timestampFromDate(row.startedAt) } : {}),
    ...(row.completedAt ? { completedAt: timestampFromDate(row.completedAt) } : {}),
    updatedAt: timestampFromDate(row.updatedAt),
  });
}
