/**
 * CostService.RecordUsage: the SDK settles a call's actual usage.
 *
 * PostgreSQL is the source of truth; Redis mirrors it for the edge. In one transaction:
 * the applicable budget rows are locked (id order), each rolled over when it still counts
 * an earlier period, the usage added and the thresholds it reached marked; the envelope's
 * and every ancestor's cost_summary grow by the call; a cost_events row records it with
 * every budget it was counted against. Its dedupe_key (`res:<reservation>` or
 * `key:<idempotency key>`, unique per tenant) makes a second settle AlreadyExists with
 * nothing counted twice. After the commit the ledger is settled with the rows' absolute
 * values (max-set: retries and reconciliation never double count) and the BUDGET_* events
 * are published (staged on the transaction, see budget-events.ts); their `events` rows are
 * written in the transaction, so reconciliation can publish a lost one (budget-outbox.ts).
 *
 * Which budgets apply is PostgreSQL's answer (tenant-wide, the workflow's, the envelope
 * chain's and their governance budgets) plus the budgets the reservation was taken
 * against, read from Redis: a reservation that expired or is unknown (another tenant's
 * is invisible: its key is tenant-scoped) still has its usage recorded — losing usage
 * because a settle came late would let the budget overspend.
 *
 * A reservation still in Redis also says which envelope the call was governed by (a
 * settle by reservation id alone charges it; naming another is InvalidArgument) and how
 * many calls were admitted (counted at least: reservation-usage.ts).
 */
import { create } from "@bufbuild/protobuf";
import type { HandlerContext } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import { BudgetLedger } from "../../../core/budget/ledger.js";
import { costMicros, FALLBACK_MODEL_PRICE, priceFor } from "../../../core/budget/prices.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import {
  type RecordUsageRequest,
  type RecordUsageResponse,
  RecordUsageResponseSchema,
} from "../../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { requirePermission } from "../auth/permissions.js";
import { tenantCaller } from "../auth/principal.js";
import { budgetStatusProto, periodStartOf } from "../budgets/budget-status.js";
import { ownPrices } from "../budgets/model-price-store.js";
import { inTenant, type Tx } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { stageManagementEvent } from "../events/management-events.js";
import { type CountedBudget, countUsage, writeCounted } from "./budget-counting.js";
import { budgetEvents } from "./budget-events.js";
import { writeBudgetEvents } from "./budget-outbox.js";
import { budgetUsed, lockApplicableBudgets, windowOf } from "./budget-rows.js";
import {
  addToSummary,
  envelopeChain,
  envelopeUsed,
  lockEnvelopes,
  writeSummary,
} from "./envelope-usage.js";
import { microsToNumeric } from "./money.js";
import { NO_HINT, type ReservationHint, reservationHint } from "./reservation-lookup.js";
import {
  checkReservationEnvelope,
  reservedEnvelope,
  withReservedCalls,
} from "./reservation-usage.js";
import { type UsageInput, usageInput } from "./usage-input.js";

export const SETTLE_FAILED_METRIC = "fulcrum_functions_budget_settle_failed_total";

interface Recorded {
  costEventId: string;
  costMicros: number;
  counted: CountedBudget[];
  envelopes: { id: string; summary: Record<string, unknown> }[];
}

export function recordUsage(deps: FunctionsDeps) {
  deps.metrics.describe(
    SETTLE_FAILED_METRIC,
    "Usage committed to PostgreSQL whose Redis counters could not be settled (reconciliation repairs them)",
  );
  const ledger = new BudgetLedger({ redis: deps.redis, keys: deps.budgetKeys });

  return async function recordUsageHandler(
    req: RecordUsageRequest,
    ctx: HandlerContext,
  ): Promise<RecordUsageResponse> {
    const caller = tenantCaller(ctx);
    requirePermission(caller, "usage.write");
    const now = deps.now();
    const requested = usageInput(req, now);
    const tenantId = caller.tenantId;
    const hint = requested.reservationId
      ? await reservationHint(deps, tenantId, requested.reservationId)
      : NO_HINT;
    checkReservationEnvelope(requested, hint);
    const input = withReservedCalls(requested, hint);
    const recorded = await inTenant(deps.db, tenantId, (tx) =>
      recordInTx(tx, tenantId, input, hint, now),
    );
    const used = [
      ...recorded.counted.map((c) =>
        budgetUsed(deps.budgetKeys, tenantId, c.row, c.window, now.getTime()),
      ),
      ...recorded.envelopes.map((e) =>
        envelopeUsed(deps.budgetKeys, tenantId, e.id, e.summary, now.getTime()),
      ),
    ];
    if (used.length === 0 && !input.reservationId) return respond(recorded, now);
    try {
      await ledger.settle({
        tenantId,
        ...(input.reservationId ? { reservationId: input.reservationId } : {}),
        used,
      });
    } catch (error) {
      // The usage is committed: PostgreSQL is the truth and answers for it. The counters
      // stay low (and the reservation held until it expires) until the next
      // reconciliation (budgets/reconcile.ts, every minute) restores them from the rows
      // just written, so the caller is not told to retry a settle that succeeded.
      deps.metrics.increment(SETTLE_FAILED_METRIC);
      deps.logger.error("usage recorded but the budget ledger was not settled", {
        tenantId,
        costEventId: recorded.costEventId,
        reservationId: input.reservationId,
        error: error instanceof Error ? error.message : String(error),
      });
    }
    return respond(recorded, now);
  };
}

function respond(recorded: Recorded, now: Date): RecordUsageResponse {
  return create(RecordUsageResponseSchema, {
    costEventId: recorded.costEventId,
    costUsd: recorded.costMicros / 1_000_000,
    budgets: recorded.counted.map((c) =>
      budgetStatusProto(
        {
          budgetId: c.row.id,
          state: c.state,
          percent: c.percent,
          limits: c.row.limits,
          used: c.row.used,
          thresholds: c.row.thresholds.map((t) => t.percent),
          periodStart: periodStartOf(c.row.period, c.row.createdAtMs, c.window),
          window: c.window,
        },
        now,
      ),
    ),
  });
}

async function recordInTx(
  tx: Tx,
  tenantId: string,
  input: UsageInput,
  hint: ReservationHint,
  now: Date,
): Promise<Recorded> {
  const envelopeId = input.envelopeId ?? (await reservedEnvelope(tx, hint.envelopeIds));
  const links = envelopeId ? await envelopeChain(tx, envelopeId) : [];
  const workflowId = input.workflowId ?? links[0]?.workflowId;
  // Budgets first, then envelopes, each in id order: the one lock order of this service.
  const budgets = await lockApplicableBudgets(tx, {
    ...(workflowId ? { workflowId } : {}),
    envelopeIds: links.map((e) => e.id),
    extraIds: [...links.flatMap((e) => (e.budgetId ? [e.budgetId] : [])), ...hint.budgetIds],
  });
  const chain = await lockEnvelopes(
    tx,
    links.map((e) => e.id),
  );
  const cost = input.costMicros ?? (await priceUsage(tx, input));
  const dedupe = input.dedupeKey ?? null;
  const { rows } = await tx.execute<{ id: string }>(sql`
    insert into cost_events (tenant_id, envelope_id, budget_id, workflow_id, model_id,
      input_tokens, output_tokens, cost_usd, llm_calls, tool_calls, dedupe_key, occurred_at,
      reservation_id, execution_ms, budget_ids)
    values (${tenantId}::uuid, ${chain[0]?.id ?? null}::uuid, ${chain[0]?.budgetId ?? null}::uuid,
      ${workflowId ?? null}, ${input.modelId ?? null}, ${input.inputTokens}, ${input.outputTokens},
      ${microsToNumeric(cost)}::numeric, ${input.llmCalls}, ${input.toolCalls}, ${dedupe},
      ${input.occurredAt.toISOString()}::timestamptz, ${input.reservationId ?? null},
      ${input.executionMs}, ${`{${budgets.map((b) => b.id).join(",")}}`}::uuid[])
    on conflict (tenant_id, dedupe_key) do nothing
    returning id::text as id`);
  const costEventId = rows[0]?.id;
  if (!costEventId) {
    throw new FulcrumError(
      "Conflict",
      input.reservationId
        ? `usage for reservation ${input.reservationId} was already recorded; nothing was counted again`
        : `usage with idempotency_key ${JSON.stringify(input.dedupeKey?.slice(4))} was already recorded; nothing was counted again`,
    );
  }
  const usage = {
    tokens: input.inputTokens + input.outputTokens,
    inputTokens: input.inputTokens,
    outputTokens: input.outputTokens,
    costMicros: cost,
    llmCalls: input.llmCalls,
    toolCalls: input.toolCalls,
    executionMs: input.executionMs,
  };
  const counted: CountedBudget[] = [];
  for (const row of budgets) {
    const c = countUsage(row, windowOf(row, now.getTime()), { usage }, now);
    await writeCounted(tx, c);
    const signalled = budgetEvents(tenantId, c, now, costEventId);
    await writeBudgetEvents(tx, signalled);
    for (const event of signalled) stageManagementEvent(event);
    counted.push(c);
  }
  const envelopes = [];
  for (const e of chain) {
    const summary = addToSummary(e.costSummary, {
      usage,
      ...(input.modelId ? { modelId: input.modelId } : {}),
      at: now,
    });
    await writeSummary(tx, e.id, summary);
    envelopes.push({ id: e.id, summary });
  }
  return { costEventId, costMicros: cost, counted, envelopes };
}

/** Tokens at the tenant's price for the model (its own, else the default, else fallback). */
async function priceUsage(tx: Tx, input: UsageInput): Promise<number> {
  if (input.inputTokens + input.outputTokens === 0 || !input.modelId) return 0;
  return costMicros(
    priceFor(await ownPrices(tx), FALLBACK_MODEL_PRICE, input.modelId),
    input.inputTokens,
    input.outputTokens,
  );
}
