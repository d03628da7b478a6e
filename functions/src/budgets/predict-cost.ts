/**
 * PredictCost: tokens and cost of a call before it is made, and whether it fits a budget.
 *
 * - Input tokens: `estimated_input_tokens`, else ⌈characters / 4⌉ of `input_text` (the
 *   usual rule of thumb for English with BPE tokenizers; no tokenizer is bundled).
 * - Output tokens: `expected_output_tokens`, else the ratio output / input of the tenant's
 *   recent calls of that model (the workflow's when it has enough of them), else 1:1.
 * - Confidence (0..1): 0.8 for a caller-given output size, 0.3..0.9 growing with the
 *   history's size, 0.2 without history; × 0.9 when input came from characters.
 *   The cost range is cost × [confidence, 2 − confidence].
 * - Price: the tenant's table over the defaults (prefix match, then the fallback).
 * - Budget: `budget_id`, else the applicable budget (tenant-wide or the workflow's) with
 *   the least cost left; within_budget when the estimate fits every limited token and cost
 *   dimension of its current period (a suspended budget fits nothing).
 */
import { and, eq, isNull, or, sql } from "drizzle-orm";
import { costMicros, FALLBACK_MODEL_PRICE, priceFor } from "../../../core/budget/prices.js";
import { remainingOf } from "../../../core/budget/status.js";
import { budgets } from "../../../db/schema/index.js";
import type {
  PredictCostRequest,
  PredictCostResponse,
} from "../../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import type { Tx } from "../db/tenant-transaction.js";
import { budgetIdOf, loadBudget } from "./budget-store.js";
import { type BudgetView, viewOf } from "./budget-view.js";
import { ownPrices } from "./model-price-store.js";

type Raw = Record<string, unknown>;

/** Recent calls looked at for the output/input ratio. */
const HISTORY = 100;
/** Fewer calls of the workflow than this: the tenant's history is used instead. */
const MIN_WORKFLOW_SAMPLES = 10;
/** From this many calls on, the history's confidence no longer grows. */
const FULL_CONFIDENCE_SAMPLES = 50;

async function outputRatio(
  tx: Tx,
  modelId: string,
  workflowId: string | undefined,
): Promise<{ ratio: number; samples: number } | undefined> {
  const read = async (wf: string | undefined) => {
    const { rows } = await tx.execute<Raw>(sql`
      select coalesce(sum(input_tokens), 0)::float8 as input,
        coalesce(sum(output_tokens), 0)::float8 as output, count(*)::float8 as samples
      from (select input_tokens, output_tokens from cost_events
             where model_id = ${modelId} and input_tokens > 0
               and (${wf ?? null}::text is null or workflow_id = ${wf ?? null})
             order by occurred_at desc limit ${HISTORY}) recent`);
    const r = rows[0] ?? {};
    return {
      input: Number(r.input ?? 0),
      output: Number(r.output ?? 0),
      samples: Number(r.samples ?? 0),
    };
  };
  let h = workflowId ? await read(workflowId) : undefined;
  if (!h || h.samples < MIN_WORKFLOW_SAMPLES) h = await read(undefined);
  if (h.samples === 0 || h.input === 0) return undefined;
  return { ratio: h.output / h.input, samples: h.samples };
}

/** The budget to check: the named one, else the applicable one with the least cost left. */
async function budgetToCheck(
  tx: Tx,
  req: PredictCostRequest,
  now: Date,
): Promise<BudgetView | undefined> {
  if (req.budgetId !== "")
    return viewOf(await loadBudget(tx, budgetIdOf("budget_id", req.budgetId)), now);
  const tenantWide = and(isNull(budgets.workflowId), isNull(budgets.envelopeId));
  const rows = await tx
    .select()
    .from(budgets)
    .where(req.workflowId ? or(tenantWide, eq(budgets.workflowId, req.workflowId)) : tenantWide);
  const views = rows.map((r) => viewOf(r, now));
  const left = (v: BudgetView) =>
    remainingOf(v.limits, v.used).costMicros ?? Number.POSITIVE_INFINITY;
  return views.sort((a, b) => left(a) - left(b) || a.row.id.localeCompare(b.row.id))[0];
}

export async function predictCost(
  tx: Tx,
  req: PredictCostRequest,
  now: Date,
): Promise<Omit<PredictCostResponse, "$typeName" | "$unknown">> {
  const fromText = req.estimatedInputTokens <= 0n;
  const inputTokens = fromText
    ? Math.ceil([...req.inputText].length / 4)
    : Number(req.estimatedInputTokens);
  let outputTokens: number;
  let confidence: number;
  if (req.expectedOutputTokens > 0n) {
    outputTokens = Number(req.expectedOutputTokens);
    confidence = 0.8;
  } else {
    const history = await outputRatio(tx, req.modelId, req.workflowId || undefined);
    outputTokens = Math.ceil(inputTokens * (history?.ratio ?? 1));
    confidence = history
      ? 0.3 + (0.6 * Math.min(history.samples, FULL_CONFIDENCE_SAMPLES)) / FULL_CONFIDENCE_SAMPLES
      : 0.2;
  }
  if (fromText) confidence *= 0.9;
  const price = priceFor(await ownPrices(tx), FALLBACK_MODEL_PRICE, req.modelId);
  const micros = costMicros(price, inputTokens, outputTokens);
  const estimate = micros / 1_000_000;
  const budget = await budgetToCheck(tx, req, now);
  let within = true;
  let remainingUsd = 0;
  if (budget) {
    const left = remainingOf(budget.limits, budget.used);
    const fits = (limit: number | undefined, wanted: number) =>
      limit === undefined || wanted <= limit;
    within =
      budget.state !== "SUSPENDED" &&
      fits(left.costMicros, micros) &&
      fits(left.tokens, inputTokens + outputTokens) &&
      fits(left.inputTokens, inputTokens) &&
      fits(left.outputTokens, outputTokens);
    remainingUsd = (left.costMicros ?? 0) / 1_000_000;
  }
  return {
    estimatedInputTokens: BigInt(inputTokens),
    estimatedOutputTokens: BigInt(outputTokens),
    estimatedTotalTokens: BigInt(inputTokens + outputTokens),
    estimatedCostUsd: estimate,
    confidence: Math.round(confidence * 1000) / 1000,
    costLowerUsd: estimate * confidence,
    costUpperUsd: estimate * (2 - confidence),
    budgetId: budget?.row.id ?? "",
    withinBudget: within,
    budgetRemainingUsd: remainingUsd,
  };
}
