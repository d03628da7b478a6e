/**
 * An envelope's usage: its `cost_summary` jsonb (snake_case keys, read by
 * envelopes/envelope-rows.ts) counts the envelope's own calls and every descendant's, so a
 * parent's summary — and its ledger counter `env:<id>` (period INFINITE) — is what the
 * whole tree under it has consumed: a child can never spend past its parent's limits.
 */

import { sql } from "drizzle-orm";
import { type BudgetKeys, envelopeCounterId } from "../../../core/budget/budget-keys.js";
import type { UsedValues } from "../../../core/budget/ledger-types.js";
import { addUsage, type BudgetUsage } from "../../../core/budget/limits.js";
import { counterExpiryMs } from "../../../core/budget/periods.js";
import { notFound } from "../../../core/errors/fulcrum-error.js";
import { isUuid } from "../../../core/ids/uuid.js";
import type { Tx } from "../db/tenant-transaction.js";
import { usedFields } from "./budget-rows.js";

export interface EnvelopeChainRow {
  id: string;
  workflowId: string;
  budgetId: string | null;
  status: string;
  costSummary: Record<string, unknown>;
}

/** A parent chain longer than this is a cycle or a mistake; the walk stops there. */
const MAX_DEPTH = 64;

export interface ChainLink {
  id: string;
  workflowId: string;
  budgetId: string | null;
}

/**
 * The envelope and its ancestors (envelope first, unlocked), or NotFound: an id that is
 * not a UUID, or belongs to another tenant (row-level security hides it), names no
 * envelope of the caller's.
 */
export async function envelopeChain(tx: Tx, envelopeId: string): Promise<ChainLink[]> {
  if (!isUuid(envelopeId)) throw notFound(`envelope ${envelopeId} not found in this tenant`);
  const { rows } = await tx.execute<{
    id: string;
    workflow_id: string;
    budget_id: string | null;
  }>(sql`
    with recursive chain(id, parent, workflow_id, budget_id, depth) as (
      select id, parent_envelope_id, workflow_id, budget_id, 0
        from envelopes where id = ${envelopeId.toLowerCase()}::uuid
      union all
      select e.id, e.parent_envelope_id, e.workflow_id, e.budget_id, c.depth + 1
        from envelopes e join chain c on e.id = c.parent
       where c.depth < ${MAX_DEPTH}
    )
    select id::text as id, workflow_id, budget_id::text as budget_id from chain order by depth`);
  if (rows.length === 0) throw notFound(`envelope ${envelopeId} not found in this tenant`);
  return rows.map((r) => ({ id: r.id, workflowId: r.workflow_id, budgetId: r.budget_id }));
}

/** Locks the chain's rows in id order (after the budgets: the one lock order). */
export async function lockEnvelopes(tx: Tx, ids: readonly string[]): Promise<EnvelopeChainRow[]> {
  if (ids.length === 0) return [];
  const { rows } = await tx.execute<Record<string, unknown>>(sql`
    select id::text as id, workflow_id, budget_id::text as budget_id, status, cost_summary
      from envelopes where id = any(${`{${ids.join(",")}}`}::uuid[])
     order by id
       for no key update`);
  const byId = new Map(
    rows.map((r) => [
      String(r.id),
      {
        id: String(r.id),
        workflowId: String(r.workflow_id),
        budgetId: (r.budget_id as string | null) ?? null,
        status: String(r.status),
        costSummary: (r.cost_summary ?? {}) as Record<string, unknown>,
      },
    ]),
  );
  // Back in chain order (envelope first).
  return ids.flatMap((id) => byId.get(id) ?? []);
}

const n = (v: unknown): number =>
  typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.trunc(v) : 0;

/** The summary's totals in ledger units (cost kept as micro-USD; older USD read too). */
export function summaryUsage(summary: Record<string, unknown>): BudgetUsage {
  const input = n(summary.input_tokens);
  const output = n(summary.output_tokens);
  return {
    tokens: "total_tokens" in summary ? n(summary.total_tokens) : input + output,
    inputTokens: input,
    outputTokens: output,
    costMicros:
      "cost_micros" in summary
        ? n(summary.cost_micros)
        : Math.round(Number(summary.cost_usd ?? 0) * 1e6) || 0,
    llmCalls: n(summary.llm_calls),
    toolCalls: n(summary.tool_calls),
    executionMs: n(summary.execution_ms),
  };
}

export interface EnvelopeCall {
  /** Execution time included. */
  usage: BudgetUsage;
  modelId?: string;
  at: Date;
}

/** The summary with one more call counted (model breakdown included). */
export function addToSummary(
  summary: Record<string, unknown>,
  call: EnvelopeCall,
): Record<string, unknown> {
  const before = summaryUsage(summary);
  const models = Array.isArray(summary.model_costs)
    ? (summary.model_costs as Record<string, unknown>[]).map((m) => ({ ...m }))
    : [];
  if (call.modelId) {
    let entry = models.find((m) => m.model_id === call.modelId);
    if (!entry) {
      entry = { model_id: call.modelId };
      models.push(entry);
    }
    entry.input_tokens = n(entry.input_tokens) + call.usage.inputTokens;
    entry.output_tokens = n(entry.output_tokens) + call.usage.outputTokens;
    entry.cost_micros = n(entry.cost_micros) + call.usage.costMicros;
    entry.call_count = n(entry.call_count) + Math.max(1, call.usage.llmCalls);
  }
  const after = addUsage(before, call.usage);
  return {
    ...summary,
    input_tokens: after.inputTokens,
    output_tokens: after.outputTokens,
    total_tokens: after.tokens,
    cost_micros: after.costMicros,
    llm_calls: after.llmCalls,
    tool_calls: after.toolCalls,
    execution_ms: after.executionMs,
    model_costs: models,
    updated_at: call.at.toISOString(),
  };
}

export async function writeSummary(
  tx: Tx,
  id: string,
  summary: Record<string, unknown>,
): Promise<void> {
  await tx.execute(sql`
    update envelopes set cost_summary = ${JSON.stringify(summary)}::jsonb
     where id = ${id}::uuid`);
}

/** The envelope's own counter (`env:<id>`; kept 30 days past its last write). */
export function envelopeUsed(
  keys: BudgetKeys,
  tenantId: string,
  envelopeId: string,
  summary: Record<string, unknown>,
  nowMs: number,
): UsedValues {
  return {
    key: keys.counter(tenantId, envelopeCounterId(envelopeId), 0),
    ...usedFields(summaryUsage(summary)),
    expireAtMs: counterExpiryMs(null, nowMs),
  };
}
