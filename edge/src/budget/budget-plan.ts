/**
 * What a decision reserves and against which counters: pure functions of the tenant's
 * BudgetSet, the envelope (if any) and the request, so the selection and the estimate
 * are unit-tested without Redis. budget-gate.ts does the I/O.
 */
import {
  type BudgetDef,
  type BudgetSet,
  type EnvelopeRecord,
  isEnvelopeActive,
} from "../../../core/budget/budget-keys.js";
import type { BudgetLimits } from "../../../core/budget/limits.js";
import { counterExpiryMs, periodWindow } from "../../../core/budget/periods.js";
import {
  DEFAULT_MODEL_PRICES,
  estimateCostMicros,
  FALLBACK_MODEL_PRICE,
  type ModelPrice,
  priceFor,
  usdToMicros,
} from "../../../core/budget/prices.js";
import { globMatchAny } from "../../../core/policy-bundle/glob.js";

/** What one call is expected to use (integers: tokens, micro-USD, calls). */
export interface Estimate {
  tokens: number;
  costMicros: number;
  llmCalls: number;
  toolCalls: number;
}

/** The request fields budgets and envelopes look at. */
export interface BudgetSubject {
  workflowId?: string;
  envelopeId?: string;
  /** Short phase name ("PRE_LLM_CALL"), as the policy context carries it. */
  phase?: string;
  modelId?: string;
  toolNames: readonly string[];
  estimatedTokens: number;
  estimatedCostUsd: number;
}

/** One counter to reserve against, with what a BudgetCheck reports about it. */
export interface PlannedCounter {
  /** The ledger's counter id: a budget id, or `env:<envelope id>`. */
  counterId: string;
  /** The BudgetCheck's budget_id: a budget id, or `envelope:<envelope id>`. */
  budgetId: string;
  name: string;
  scope: "tenant" | "workflow" | "envelope";
  limits: BudgetLimits;
  suspended: boolean;
  /** false: a soft budget (hard_limit off): reserved against and reported, never refusing. */
  hard?: boolean;
  thresholds: readonly number[];
  periodStartMs: number;
  /** When the period ends (the BudgetCheck's reset_at); null: never (INFINITE, envelopes). */
  resetAtMs: number | null;
}

/**
 * The reservation estimate: tokens as sent; cost as sent, else tokens at the model's
 * dearer price (the split is unknown yet); one LLM call before an LLM call; one tool
 * call per tool before a tool call.
 */
export function estimateOf(subject: BudgetSubject, set: BudgetSet | null): Estimate {
  const tokens = subject.estimatedTokens;
  let costMicros = 0;
  if (subject.estimatedCostUsd > 0) costMicros = usdToMicros(subject.estimatedCostUsd);
  else if (tokens > 0) costMicros = estimateCostMicros(priceOf(set, subject.modelId ?? ""), tokens);
  return {
    tokens,
    costMicros,
    llmCalls: subject.phase === "PRE_LLM_CALL" ? 1 : 0,
    toolCalls: subject.phase === "PRE_TOOL_CALL" ? subject.toolNames.length : 0,
  };
}

/** The tenant's price of `model` (its published table over the defaults). */
function priceOf(set: BudgetSet | null, model: string): ModelPrice {
  const prices = { ...DEFAULT_MODEL_PRICES, ...(set?.prices ?? {}) };
  return priceFor(prices, set?.fallback ?? FALLBACK_MODEL_PRICE, model);
}

/**
 * Why the envelope refuses the call (a sentence for people), or undefined. Only an
 * AUTHORIZED or RUNNING envelope admits calls, until its deadline; an empty allowed
 * list allows every model (tool). Allowed entries are globs (envelope.proto: "tool names
 * or globs"; CreateEnvelope's subset check reads a trailing `*` as one, for models too),
 * matched like policy scopes; a plain name matches only itself.
 */
export function envelopeRefusal(
  envelope: EnvelopeRecord,
  subject: BudgetSubject,
  nowMs: number,
): string | undefined {
  const name = `envelope ${envelope.id}`;
  if (!isEnvelopeActive(envelope.status)) {
    return `${name} is ${envelope.status}: only an AUTHORIZED or RUNNING envelope admits calls`;
  }
  if (envelope.deadlineMs !== undefined && nowMs >= envelope.deadlineMs) {
    return `${name} passed its deadline (${new Date(envelope.deadlineMs).toISOString()}): its timeout is over`;
  }
  const model = subject.modelId ?? "";
  if (model && envelope.allowedModels.length > 0 && !globMatchAny(envelope.allowedModels, model)) {
    return `model ${model} is not allowed in ${name} (allowed: ${envelope.allowedModels.join(", ")})`;
  }
  if (envelope.allowedTools.length > 0) {
    const refused = subject.toolNames.filter((t) => !globMatchAny(envelope.allowedTools, t));
    if (refused.length > 0) {
      const tools =
        refused.length === 1 ? `tool ${refused[0]} is` : `tools ${refused.join(", ")} are`;
      return `${tools} not allowed in ${name} (allowed: ${envelope.allowedTools.join(", ")})`;
    }
  }
  return undefined;
}

/**
 * Every counter the call draws on, each once: the tenant's budgets, the workflow's,
 * the envelope's and every ancestor's (scope envelope, and the budget each one's
 * governance names), and the own limits (`env:<id>`) of the envelope and every
 * ancestor, so a child can never spend past its parent. `chain` is the envelope
 * followed by its ancestors (parent first); missing records leave out only their own
 * limits.
 */
export function selectCounters(
  set: BudgetSet | null,
  subject: BudgetSubject,
  chain: readonly { id: string; record?: Pick<EnvelopeRecord, "budgetId" | "limits"> }[],
  nowMs: number,
): PlannedCounter[] {
  const byId = new Map<string, PlannedCounter>();
  const budgets = set?.budgets ?? [];
  const envelopeIds = new Set(chain.map((e) => e.id));
  const governance = new Set(chain.flatMap((e) => (e.record?.budgetId ? [e.record.budgetId] : [])));
  for (const budget of budgets) {
    const applies =
      budget.scope === "tenant" ||
      (budget.scope === "workflow" &&
        budget.workflowId !== undefined &&
        budget.workflowId === subject.workflowId) ||
      (budget.scope === "envelope" &&
        budget.envelopeId !== undefined &&
        envelopeIds.has(budget.envelopeId)) ||
      governance.has(budget.id);
    if (applies && !byId.has(budget.id)) byId.set(budget.id, fromBudget(budget, nowMs));
  }
  for (const { id, record } of chain) {
    if (!record || !hasLimit(record.limits)) continue;
    const counterId = `env:${id}`;
    byId.set(counterId, {
      counterId,
      budgetId: `envelope:${id}`,
      name: `envelope ${id}`,
      scope: "envelope",
      limits: { ...record.limits },
      suspended: false,
      thresholds: [],
      periodStartMs: 0,
      resetAtMs: null,
    });
  }
  return [...byId.values()];
}

function fromBudget(budget: BudgetDef, nowMs: number): PlannedCounter {
  const window = periodWindow(
    budget.period,
    { customSeconds: budget.customSeconds, anchorMs: budget.anchorMs },
    nowMs,
  );
  return {
    counterId: budget.id,
    budgetId: budget.id,
    name: budget.name,
    scope: budget.scope,
    limits: budget.limits,
    suspended: budget.suspended,
    ...(budget.hardLimit === false ? { hard: false } : {}),
    thresholds: budget.thresholds,
    periodStartMs: window.startMs,
    resetAtMs: window.endMs,
  };
}

function hasLimit(limits: BudgetLimits | undefined): boolean {
  return limits !== undefined && Object.values(limits).some((v) => v !== undefined);
}

/** When the counter's hash may leave Redis (core/budget/periods.ts). */
export function counterExpiry(counter: PlannedCounter, nowMs: number): number {
  return counterExpiryMs(counter.resetAtMs, nowMs);
}
