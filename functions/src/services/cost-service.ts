/**
 * CostService: budgets, model prices and spend reporting (functions/src/budgets/). The
 * tenant is the API key's: a tenant_id in a request may only repeat it. Reading needs
 * `budgets.read` (every role), changing budgets and prices `budgets.write` (policy
 * authors and admins). Every change is an audit row (a MANAGEMENT_CHANGE event after the
 * commit) and, once committed, republishes the tenant's BudgetSet for the edge.
 * RecordUsage is functions/src/usage/'s.
 */
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { type BudgetStateName, stateToProto } from "../../../core/budget/status.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { Budget, BudgetState } from "../../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import {
  type CostService,
  CreateBudgetResponseSchema,
  DeleteBudgetResponseSchema,
  DeleteModelPriceResponseSchema,
  GetBudgetResponseSchema,
  GetBudgetStatusResponseSchema,
  GetCostSummaryResponseSchema,
  GetSpendSummaryResponseSchema,
  ListBudgetsResponseSchema,
  ListModelPricesResponseSchema,
  PredictCostResponseSchema,
  SetModelPriceResponseSchema,
  UpdateBudgetResponseSchema,
} from "../../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { requirePermission } from "../auth/permissions.js";
import { tenantCaller } from "../auth/principal.js";
import { republishAfterCommit } from "../budgets/budget-set-publisher.js";
import { budgetIdOf, listBudgets, loadBudget } from "../budgets/budget-store.js";
import { toBudgetProto, toStatusProto, viewOf } from "../budgets/budget-view.js";
import {
  applyBudgetUpdate,
  BUDGET_CONSTRAINTS,
  deleteBudgetRow,
  insertBudget,
} from "../budgets/budget-writes.js";
import { costSummary } from "../budgets/cost-summary.js";
import { deletePrice, listPrices, setPrice } from "../budgets/model-price-store.js";
import { predictCost } from "../budgets/predict-cost.js";
import { spendSummary } from "../budgets/spend-summary.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { requireOwnTenant } from "../policies/policy-store.js";
import { optionalUuid, requireUuid } from "../tenancy/ids.js";
import { recordUsage } from "../usage/record-usage.js";

const STATES: readonly BudgetStateName[] = ["OK", "WARNING", "CRITICAL", "EXCEEDED", "SUSPENDED"];

function required(budget: Budget | undefined): Budget {
  if (!budget) throw new FulcrumError("Invalid", "budget is required", { field: "budget" });
  return budget;
}

function stateFilter(state: BudgetState): BudgetStateName | undefined {
  return STATES.find((s) => stateToProto(s) === state);
}

export function costService(deps: FunctionsDeps): Partial<ServiceImpl<typeof CostService>> {
  const { db } = deps;
  return {
    recordUsage: recordUsage(deps),
    async createBudget(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "budgets.write");
      const row = await inTenant(
        db,
        caller.tenantId,
        (tx) => insertBudget(tx, caller, required(req.budget)),
        BUDGET_CONSTRAINTS,
      );
      await republishAfterCommit(deps, caller.tenantId);
      return create(CreateBudgetResponseSchema, { budget: toBudgetProto(viewOf(row, deps.now())) });
    },

    async getBudget(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "budgets.read");
      const id = budgetIdOf("budget_id", req.budgetId);
      const row = await inTenant(db, caller.tenantId, (tx) => loadBudget(tx, id));
      return create(GetBudgetResponseSchema, { budget: toBudgetProto(viewOf(row, deps.now())) });
    },

    async updateBudget(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "budgets.write");
      const budget = required(req.budget);
      const id = budgetIdOf("budget.budget_id", budget.budgetId);
      const row = await inTenant(
        db,
        caller.tenantId,
        (tx) => applyBudgetUpdate(tx, caller, id, budget, req.updateMask?.paths ?? []),
        BUDGET_CONSTRAINTS,
      );
      await republishAfterCommit(deps, caller.tenantId);
      return create(UpdateBudgetResponseSchema, { budget: toBudgetProto(viewOf(row, deps.now())) });
    },

    async deleteBudget(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "budgets.write");
      const id = budgetIdOf("budget_id", req.budgetId);
      await inTenant(db, caller.tenantId, (tx) => deleteBudgetRow(tx, caller, id));
      await republishAfterCommit(deps, caller.tenantId);
      return create(DeleteBudgetResponseSchema, {});
    },

    /** Oldest first; filters: workflow, envelope, state (computed from current usage). */
    async listBudgets(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "budgets.read");
      requireOwnTenant(caller.tenantId, req.tenantId, "tenant_id");
      const now = deps.now();
      const filters = {
        ...(req.workflowId ? { workflowId: req.workflowId } : {}),
        ...(req.envelopeId ? { envelopeId: requireUuid("envelope_id", req.envelopeId) } : {}),
        ...(stateFilter(req.status) ? { state: stateFilter(req.status) } : {}),
      };
      const page = await inTenant(db, caller.tenantId, (tx) => listBudgets(tx, filters, req, now));
      return create(ListBudgetsResponseSchema, {
        budgets: page.rows.map((row) => toBudgetProto(viewOf(row, now))),
        nextPageToken: page.nextPageToken,
      });
    },

    async getBudgetStatus(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "budgets.read");
      const id = budgetIdOf("budget_id", req.budgetId);
      const now = deps.now();
      const row = await inTenant(db, caller.tenantId, (tx) => loadBudget(tx, id));
      return create(GetBudgetStatusResponseSchema, {
        status: toStatusProto(viewOf(row, now), now),
      });
    },

    async getCostSummary(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "budgets.read");
      const id = requireUuid("envelope_id", req.envelopeId);
      const summary = await inTenant(db, caller.tenantId, (tx) => costSummary(tx, id, deps.now()));
      return create(GetCostSummaryResponseSchema, { summary });
    },

    async getSpendSummary(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "budgets.read");
      requireOwnTenant(caller.tenantId, req.tenantId, "tenant_id");
      const query = {
        tenantId: caller.tenantId,
        ...(req.workflowId ? { workflowId: req.workflowId } : {}),
        ...(req.startTime ? { start: req.startTime } : {}),
        ...(req.endTime ? { end: req.endTime } : {}),
        groupBy: req.groupBy,
      };
      const summary = await inTenant(db, caller.tenantId, (tx) =>
        spendSummary(tx, query, deps.now()),
      );
      return create(GetSpendSummaryResponseSchema, { summary });
    },

    async predictCost(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "budgets.read");
      requireOwnTenant(caller.tenantId, req.tenantId, "tenant_id");
      optionalUuid("budget_id", req.budgetId);
      const prediction = await inTenant(db, caller.tenantId, (tx) =>
        predictCost(tx, req, deps.now()),
      );
      return create(PredictCostResponseSchema, prediction);
    },

    async listModelPrices(_req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "budgets.read");
      const prices = await inTenant(db, caller.tenantId, (tx) => listPrices(tx));
      return create(ListModelPricesResponseSchema, prices);
    },

    async setModelPrice(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "budgets.write");
      const price = await inTenant(db, caller.tenantId, (tx) => setPrice(tx, caller, req.price));
      await republishAfterCommit(deps, caller.tenantId);
      return create(SetModelPriceResponseSchema, { price });
    },

    async deleteModelPrice(req, ctx) {
      const caller = tenantCaller(ctx);
      requirePermission(caller, "budgets.write");
      await inTenant(db, caller.tenantId, (tx) => deletePrice(tx, caller, req.modelId));
      await republishAfterCommit(deps, caller.tenantId);
      return create(DeleteModelPriceResponseSchema, {});
    },
  };
}
