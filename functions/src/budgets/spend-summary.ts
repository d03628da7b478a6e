/**
 * GetSpendSummary: a tenant's (or one workflow's) spend over a time range from cost_events,
 * optionally in buckets (per model, workflow, UTC day, ISO week or month), with the
 * executions (envelopes) created in the range by outcome.
 */
import { create } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { sql } from "drizzle-orm";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import {
  type ModelCost,
  ModelCostSchema,
  type SpendBucket,
  SpendBucketSchema,
  SpendGroupBy,
  type SpendSummary,
  SpendSummarySchema,
} from "../../../proto/gen/fulcrum/cost/v1/spend_pb.js";
import type { Tx } from "../db/tenant-transaction.js";
import { numericToMicros } from "../usage/money.js";

type Raw = Record<string, unknown>;

/** Sums of cost_events columns; cost as exact numeric text. */
const SUMS = sql.raw(`coalesce(sum(cost_usd), 0)::text as cost,
  coalesce(sum(input_tokens), 0)::float8 as input, coalesce(sum(output_tokens), 0)::float8 as output,
  coalesce(sum(llm_calls), 0)::float8 as llm, coalesce(sum(tool_calls), 0)::float8 as tool,
  count(*)::float8 as events, count(distinct envelope_id)::float8 as executions`);

const num = (v: unknown) => Number(v ?? 0);
const usd = (v: unknown) => numericToMicros(String(v ?? "0")) / 1_000_000;

export function modelCostOf(r: Raw): ModelCost {
  return create(ModelCostSchema, {
    modelId: String(r.key ?? ""),
    inputTokens: BigInt(num(r.input)),
    outputTokens: BigInt(num(r.output)),
    costUsd: usd(r.cost),
    callCount: BigInt(num(r.events)),
  });
}

const TRUNC: Partial<Record<SpendGroupBy, { unit: string; interval: string }>> = {
  [SpendGroupBy.DAY]: { unit: "day", interval: "1 day" },
  [SpendGroupBy.WEEK]: { unit: "week", interval: "1 week" },
  [SpendGroupBy.MONTH]: { unit: "month", interval: "1 month" },
};

export interface SpendQuery {
  tenantId: string;
  workflowId?: string;
  start?: Timestamp;
  end?: Timestamp;
  groupBy: SpendGroupBy;
}

/** Default range: from the start of the current UTC month to now. */
function rangeOf(q: SpendQuery, now: Date): { start: Date; end: Date } {
  const start = q.start
    ? timestampDate(q.start)
    : new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  const end = q.end ? timestampDate(q.end) : now;
  if (end.getTime() <= start.getTime()) {
    throw new FulcrumError(
      "Invalid",
      "end_time must be after start_time (start_time defaults to the start of this month, end_time to now)",
      { field: "end_time" },
    );
  }
  return { start, end };
}

export async function spendSummary(tx: Tx, q: SpendQuery, now: Date): Promise<SpendSummary> {
  const { start, end } = rangeOf(q, now);
  const where = sql`occurred_at >= ${start.toISOString()}::timestamptz
    and occurred_at < ${end.toISOString()}::timestamptz
    and (${q.workflowId ?? null}::text is null or workflow_id = ${q.workflowId ?? null})`;
  const totals = (await tx.execute<Raw>(sql`select ${SUMS} from cost_events where ${where}`))
    .rows[0] as Raw;
  const models = (
    await tx.execute<Raw>(sql`select coalesce(model_id, '') as key, ${SUMS} from cost_events
      where ${where} group by 1 order by 1`)
  ).rows;
  const outcomes = (
    await tx.execute<Raw>(sql`select count(*)::float8 as total,
        count(*) filter (where status = 'COMPLETED')::float8 as completed,
        count(*) filter (where status in ('FAILED', 'TIMEOUT'))::float8 as failed,
        count(*) filter (where status in ('TERMINATED', 'BUDGET_EXCEEDED', 'POLICY_VIOLATION'))::float8
          as terminated
      from envelopes
      where created_at >= ${start.toISOString()}::timestamptz
        and created_at < ${end.toISOString()}::timestamptz
        and (${q.workflowId ?? null}::text is null or workflow_id = ${q.workflowId ?? null})`)
  ).rows[0] as Raw;
  return create(SpendSummarySchema, {
    tenantId: q.tenantId,
    workflowId: q.workflowId ?? "",
    startTime: timestampFromDate(start),
    endTime: timestampFromDate(end),
    totalCostUsd: usd(totals.cost),
    totalTokens: BigInt(num(totals.input) + num(totals.output)),
    inputTokens: BigInt(num(totals.input)),
    outputTokens: BigInt(num(totals.output)),
    llmCalls: BigInt(num(totals.llm)),
    toolCalls: BigInt(num(totals.tool)),
    executionsTotal: BigInt(num(outcomes.total)),
    executionsCompleted: BigInt(num(outcomes.completed)),
    executionsFailed: BigInt(num(outcomes.failed)),
    executionsTerminated: BigInt(num(outcomes.terminated)),
    modelCosts: models.map(modelCostOf),
    groupBy: q.groupBy,
    buckets: await buckets(tx, q.groupBy, where),
  });
}

function bucketOf(r: Raw, times?: { start: Date; end: Date }): SpendBucket {
  return create(SpendBucketSchema, {
    key: String(r.key ?? ""),
    ...(times
      ? { startTime: timestampFromDate(times.start), endTime: timestampFromDate(times.end) }
      : {}),
    costUsd: usd(r.cost),
    inputTokens: BigInt(num(r.input)),
    outputTokens: BigInt(num(r.output)),
    llmCalls: BigInt(num(r.llm)),
    toolCalls: BigInt(num(r.tool)),
    executions: BigInt(num(r.executions)),
  });
}

async function buckets(
  tx: Tx,
  groupBy: SpendGroupBy,
  where: ReturnType<typeof sql>,
): Promise<SpendBucket[]> {
  if (groupBy === SpendGroupBy.MODEL || groupBy === SpendGroupBy.WORKFLOW) {
    const column = sql.raw(groupBy === SpendGroupBy.MODEL ? "model_id" : "workflow_id");
    const { rows } = await tx.execute<Raw>(sql`select coalesce(${column}, '') as key, ${SUMS}
      from cost_events where ${where} group by 1 order by 1`);
    return rows.map((r) => bucketOf(r));
  }
  const trunc = TRUNC[groupBy];
  if (!trunc) return [];
  // UTC calendar buckets (date_trunc in UTC; weeks start on Monday, ISO).
  const unit = sql.raw(`'${trunc.unit}'`);
  const step = sql.raw(`interval '${trunc.interval}'`);
  const { rows } = await tx.execute<Raw>(sql`select
      to_char(b at time zone 'UTC', 'YYYY-MM-DD') as key,
      (extract(epoch from b) * 1000)::float8 as start_ms,
      (extract(epoch from (b at time zone 'UTC' + ${step}) at time zone 'UTC') * 1000)::float8 as end_ms,
      ${SUMS}
    from (select date_trunc(${unit}, occurred_at at time zone 'UTC') at time zone 'UTC' as b, *
            from cost_events where ${where}) e
    group by b order by b`);
  return rows.map((r) =>
    bucketOf(r, { start: new Date(num(r.start_ms)), end: new Date(num(r.end_ms)) }),
  );
}
