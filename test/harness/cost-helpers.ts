import { randomBytes, randomUUID } from "node:crypto";
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { type BudgetSet, parseBudgetSet } from "../../core/budget/budget-keys.js";
import { BudgetPeriod } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import {
  CostService,
  type CreateBudgetRequestSchema,
} from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import type { FunctionsStack } from "./functions-stack.js";

/**
 * Helpers of the CostService integration tests (cost-service.test.ts,
 * cost-reporting.test.ts): a tenant with its CostService client, budgets with
 * defaults, the tenant's BudgetSet as the edge reads it, and rows written straight
 * into PostgreSQL (as the owner) for usage the tests need as a starting point.
 */
export interface CostTenant {
  tenantId: string;
  adminKey: string;
  cost: Client<typeof CostService>;
}

export async function costTenant(stack: FunctionsStack): Promise<CostTenant> {
  const t = await stack.createTenant();
  return { ...t, cost: stack.client(CostService, t.adminKey) };
}

export const uniqueBudgetName = (prefix = "budget") =>
  `${prefix}-${randomBytes(4).toString("hex")}`;

export type BudgetInit = NonNullable<MessageInitShape<typeof CreateBudgetRequestSchema>["budget"]>;

/** CreateBudget with a unique name, MONTHLY and 1000 tokens unless `init` says otherwise. */
export async function newBudget(t: CostTenant, init: BudgetInit = {}) {
  const { budget } = await t.cost.createBudget({
    budget: {
      name: uniqueBudgetName(),
      period: BudgetPeriod.MONTHLY,
      limits: { maxTokens: 1000n },
      ...init,
    } as BudgetInit,
  });
  if (!budget) throw new Error("CreateBudget returned no budget");
  return budget;
}

/** The tenant's BudgetSet in Redis (null: none published). */
export async function budgetSetOf(
  stack: FunctionsStack,
  tenantId: string,
): Promise<BudgetSet | null> {
  const raw = await stack.redis.get(stack.deps.budgetKeys.budgetSet(tenantId));
  return raw === null ? null : parseBudgetSet(raw);
}

/** Sets a budget's usage columns for the current period (as RecordUsage would have). */
export async function setUsage(
  stack: FunctionsStack,
  budgetId: string,
  usage: { tokens?: number; costUsd?: string; periodStart?: string },
): Promise<void> {
  await stack.owner.query(
    `UPDATE budgets SET current_tokens = $2, current_spend_usd = $3,
       period_start = coalesce($4::timestamptz, now()) WHERE id = $1`,
    [budgetId, usage.tokens ?? 0, usage.costUsd ?? "0", usage.periodStart ?? null],
  );
}

export interface CostEventRow {
  envelopeId?: string;
  workflowId?: string;
  modelId?: string;
  input?: number;
  output?: number;
  costUsd?: string;
  llm?: number;
  tool?: number;
  at: string;
}

/** cost_events rows of the tenant, inserted as the owner. */
export async function insertCostEvents(
  stack: FunctionsStack,
  tenantId: string,
  rows: CostEventRow[],
): Promise<void> {
  for (const r of rows) {
    await stack.owner.query(
      `INSERT INTO cost_events (tenant_id, envelope_id, workflow_id, model_id, input_tokens,
         output_tokens, cost_usd, llm_calls, tool_calls, occurred_at, dedupe_key)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      [
        tenantId,
        r.envelopeId ?? null,
        r.workflowId ?? null,
        r.modelId ?? null,
        r.input ?? 0,
        r.output ?? 0,
        r.costUsd ?? "0",
        r.llm ?? 0,
        r.tool ?? 0,
        r.at,
        `key:${randomUUID()}`,
      ],
    );
  }
}

/** An envelope row of the tenant (owner insert): status and creation time as given. */
export async function insertEnvelope(
  stack: FunctionsStack,
  tenantId: string,
  init: {
    workflowId?: string;
    status?: string;
    parentId?: string;
    budgetId?: string;
    createdAt?: string;
  } = {},
): Promise<string> {
  const id = randomUUID();
  await stack.owner.query(
    `INSERT INTO envelopes (id, tenant_id, workflow_id, execution_id, status, parent_envelope_id,
       budget_id, created_at, started_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, coalesce($8::timestamptz, now()), coalesce($8::timestamptz, now()))`,
    [
      id,
      tenantId,
      init.workflowId ?? "wf",
      `exec-${id}`,
      init.status ?? "RUNNING",
      init.parentId ?? null,
      init.budgetId ?? null,
      init.createdAt ?? null,
    ],
  );
  return id;
}
