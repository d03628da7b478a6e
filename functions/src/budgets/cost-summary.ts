/**
 * GetCostSummary: what one execution consumed — its own cost_events and those of every
 * descendant (a child envelope draws on its parent, so the parent's cost includes it,
 * as RecordUsage counts it into envelopes.cost_summary), per model too.
 */
import { create } from "@bufbuild/protobuf";
import { DurationSchema, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { sql } from "drizzle-orm";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import {
  type CostSummary,
  CostSummarySchema,
} from "../../../proto/gen/fulcrum/cost/v1/spend_pb.js";
import type { Tx } from "../db/tenant-transaction.js";
import { numericToMicros } from "../usage/money.js";
import { modelCostOf } from "./spend-summary.js";

type Raw = Record<string, unknown>;

/** Deeper nesting than this is not followed (envelope trees are shallow in practice). */
const MAX_DEPTH = 64;

const num = (v: unknown) => Number(v ?? 0);

export async function costSummary(tx: Tx, envelopeId: string, now: Date): Promise<CostSummary> {
  const envelope = (
    await tx.execute<Raw>(sql`select id::text as id, tenant_id::text as tenant_id, workflow_id,
        budget_id::text as budget_id, cost_summary,
        (extract(epoch from started_at) * 1000)::float8 as started_ms,
        (extract(epoch from completed_at) * 1000)::float8 as completed_ms,
        (extract(epoch from updated_at) * 1000)::float8 as updated_ms
      from envelopes where id = ${envelopeId}::uuid`)
  ).rows[0];
  if (!envelope) throw new FulcrumError("NotFound", `envelope ${envelopeId} not found`);
  const { rows } = await tx.execute<Raw>(sql`
    with recursive tree(id, depth) as (
      select ${envelopeId}::uuid, 0
      union all
      select e.id, t.depth + 1 from envelopes e join tree t on e.parent_envelope_id = t.id
       where t.depth < ${MAX_DEPTH}
    )
    select coalesce(model_id, '') as key, coalesce(sum(cost_usd), 0)::text as cost,
      coalesce(sum(input_tokens), 0)::float8 as input,
      coalesce(sum(output_tokens), 0)::float8 as output,
      coalesce(sum(llm_calls), 0)::float8 as llm, coalesce(sum(tool_calls), 0)::float8 as tool,
      count(*)::float8 as events
    from cost_events where envelope_id in (select id from tree)
    group by 1 order by 1`);
  const total = (f: (r: Raw) => number) => rows.reduce((sum, r) => sum + f(r), 0);
  const input = total((r) => num(r.input));
  const output = total((r) => num(r.output));
  const costMicros = total((r) => numericToMicros(String(r.cost ?? "0")));
  const startedMs = envelope.started_ms == null ? null : num(envelope.started_ms);
  const endMs = envelope.completed_ms == null ? now.getTime() : num(envelope.completed_ms);
  const elapsedMs = startedMs === null ? 0 : Math.max(0, Math.round(endMs - startedMs));
  const summary = (envelope.cost_summary ?? {}) as Record<string, unknown>;
  const updatedAt =
    typeof summary.updated_at === "string"
      ? new Date(summary.updated_at)
      : new Date(num(envelope.updated_ms));
  return create(CostSummarySchema, {
    envelopeId,
    tenantId: String(envelope.tenant_id),
    workflowId: String(envelope.workflow_id ?? ""),
    budgetId: envelope.budget_id == null ? "" : String(envelope.budget_id),
    inputTokens: BigInt(input),
    outputTokens: BigInt(output),
    totalTokens: BigInt(input + output),
    costUsd: costMicros / 1_000_000,
    llmCalls: BigInt(total((r) => num(r.llm))),
    toolCalls: BigInt(total((r) => num(r.tool))),
    // Calls with no model are counted in the totals but have no model entry.
    modelCosts: rows.filter((r) => r.key !== "").map(modelCostOf),
    executionTime: create(DurationSchema, {
      seconds: BigInt(Math.floor(elapsedMs / 1000)),
      nanos: (elapsedMs % 1000) * 1_000_000,
    }),
    ...(Number.isNaN(updatedAt.getTime()) ? {} : { updatedAt: timestampFromDate(updatedAt) }),
  });
}
