import { randomUUID } from "node:crypto";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type Budget,
  BudgetLimitsSchema,
  BudgetPeriod,
  BudgetState,
  BudgetThresholdSchema,
} from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import { CostService } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import {
  budgetSetOf,
  type CostTenant,
  costTenant,
  insertEnvelope,
  newBudget,
  setUsage,
  uniqueBudgetName,
} from "../harness/cost-helpers.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { auditRows, expectCode, userWithKey } from "../harness/management-helpers.js";

// CostService's budgets over the real stack (HTTP → functions → PostgreSQL with RLS, and
// the edge's Redis through the Upstash stand-in): create / get / update / delete with
// their validation, the state and status computed from usage, ListBudgets pages and
// filters, and the tenant's BudgetSet republished after every change.
// Prices, spend, cost summaries and predictions: cost-reporting.test.ts.
let stack: FunctionsStack;
let t: CostTenant;
let other: CostTenant;
const limits = (init: MessageInitShape<typeof BudgetLimitsSchema>) =>
  create(BudgetLimitsSchema, init);

beforeAll(async () => {
  stack = await startFunctionsStack();
  t = await costTenant(stack);
  other = await costTenant(stack);
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

describe("CreateBudget and GetBudget", () => {
  it("creates a hard monthly budget with the default thresholds, audits it and publishes it", async () => {
    const name = uniqueBudgetName("monthly");
    const budget = await newBudget(t, {
      name,
      workflowId: "wf-a",
      limits: { maxTokens: 1000n, maxCostUsd: 12.5 },
    });
    expect(budget).toMatchObject({
      name,
      tenantId: t.tenantId,
      workflowId: "wf-a",
      period: BudgetPeriod.MONTHLY,
      status: BudgetState.OK,
      hardLimit: true,
    });
    expect(budget.thresholds.map((x) => [x.percent, x.notified])).toEqual([
      [80, false],
      [100, false],
    ]);
    const now = new Date();
    const monthStart = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1);
    expect(timestampMs(budget.periodStart ?? ({ seconds: 0n, nanos: 0 } as never))).toBe(
      monthStart,
    );
    expect(budget.resetAt && timestampMs(budget.resetAt)).toBe(
      Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 1, 1),
    );
    const got = await t.cost.getBudget({ budgetId: budget.budgetId });
    expect(got.budget?.limits?.maxCostUsd).toBe(12.5);
    expect(got.budget?.currentSpend?.totalTokens).toBe(0n);

    const audit = await auditRows(stack, t.tenantId, budget.budgetId);
    expect(audit.map((a) => a.action)).toEqual(["budget.created"]);
    const set = await budgetSetOf(stack, t.tenantId);
    expect(set?.budgets.find((b) => b.id === budget.budgetId)).toMatchObject({
      name,
      scope: "workflow",
      workflowId: "wf-a",
      period: "MONTHLY",
      limits: { tokens: 1000, costMicros: 12_500_000 },
      thresholds: [80, 100],
      suspended: false,
      hardLimit: true,
    });
    expect(set?.prices["gpt-4o"]).toEqual([2.5, 10]);
  });

  it("keeps given thresholds, a soft limit, a CUSTOM period and an envelope scope", async () => {
    const envelopeId = await insertEnvelope(stack, t.tenantId);
    const budget = await newBudget(t, {
      envelopeId,
      period: BudgetPeriod.CUSTOM,
      customPeriodSeconds: 600n,
      hardLimit: false,
      thresholds: [{ percent: 100 }, { percent: 50 }, { percent: 50 }],
    });
    expect(budget.thresholds.map((x) => x.percent)).toEqual([50, 100]);
    expect(budget).toMatchObject({ envelopeId, hardLimit: false, customPeriodSeconds: 600n });
    const def = (await budgetSetOf(stack, t.tenantId))?.budgets.find(
      (b) => b.id === budget.budgetId,
    );
    expect(def).toMatchObject({
      scope: "envelope",
      envelopeId,
      customSeconds: 600,
      hardLimit: false,
    });
  });

  it("refuses bad budgets with InvalidArgument naming the field", async () => {
    const cases: [Parameters<typeof newBudget>[1], RegExp][] = [
      [{ limits: { maxTokens: -1n } }, /budget\.limits\.max_tokens/],
      [{ limits: { maxCostUsd: -0.5 } }, /budget\.limits\.max_cost_usd/],
      [{ limits: {} }, /budget\.limits sets no limit/],
      [{ period: BudgetPeriod.CUSTOM }, /custom_period_seconds/],
      [{ period: BudgetPeriod.DAILY, customPeriodSeconds: 60n }, /custom_period_seconds/],
      [{ name: "x".repeat(201) }, /budget\.name/],
      [{ workflowId: "wf", envelopeId: randomUUID() }, /budget\.envelope_id/],
      [{ envelopeId: "not-a-uuid" }, /budget\.envelope_id/],
      [{ thresholds: [{ percent: 0 }] }, /percent/],
    ];
    for (const [init, field] of cases) {
      await expectCode(newBudget(t, init), Code.InvalidArgument, field);
    }
  });

  it("refuses duplicates, foreign tenants, unknown envelopes and callers without budgets.write", async () => {
    const name = uniqueBudgetName("dup");
    await newBudget(t, { name });
    await expectCode(newBudget(t, { name }), Code.AlreadyExists, /already exists/);
    // Other tenants may use the name.
    await newBudget(other, { name });
    await expectCode(
      newBudget(t, { tenantId: other.tenantId }),
      Code.PermissionDenied,
      /tenant_id/,
    );
    await expectCode(newBudget(t, { envelopeId: randomUUID() }), Code.NotFound, /envelope/);
    const viewer = await userWithKey(stack, t.adminKey, UserRole.VIEWER);
    const asViewer = { ...t, cost: stack.client(CostService, viewer.key) };
    await expectCode(newBudget(asViewer), Code.PermissionDenied, /budgets write/);
    // …but viewers read.
    expect((await asViewer.cost.listBudgets({})).budgets.length).toBeGreaterThan(0);
  });

  it("answers InvalidArgument for a malformed id and NotFound for unknown and other tenants' budgets", async () => {
    await expectCode(
      t.cost.getBudget({ budgetId: "nope" }),
      Code.InvalidArgument,
      /budget_id must be a UUID/,
    );
    const unknown = randomUUID();
    await expectCode(t.cost.getBudget({ budgetId: unknown }), Code.NotFound, /not found/);
    const theirs = (await newBudget(other)).budgetId;
    for (const call of [
      () => t.cost.getBudget({ budgetId: theirs }),
      () => t.cost.getBudgetStatus({ budgetId: theirs }),
      () => t.cost.deleteBudget({ budgetId: theirs }),
      () =>
        t.cost.updateBudget({
          budget: { budgetId: theirs, name: "mine", period: BudgetPeriod.DAILY, limits: {} },
          updateMask: { paths: ["name"] },
        }),
    ]) {
      await expectCode(call(), Code.NotFound, new RegExp(`budget ${theirs} not found`));
    }
    expect((await other.cost.getBudget({ budgetId: theirs })).budget?.budgetId).toBe(theirs);
  });
});

describe("UpdateBudget and DeleteBudget", () => {
  // UpdateBudget carries a whole valid Budget (protovalidate checks all of it); the mask
  // says which fields count. Clients read, change and send back, as here.
  const update = (budget: Budget, change: Partial<Budget>, paths: string[]) =>
    t.cost.updateBudget({ budget: { ...budget, ...change }, updateMask: { paths } });

  it("raises limits, suspends and resumes, republishing the set each time", async () => {
    const budget = await newBudget(t);
    await setUsage(stack, budget.budgetId, { tokens: 1000 });
    expect((await t.cost.getBudget({ budgetId: budget.budgetId })).budget?.status).toBe(
      BudgetState.EXCEEDED,
    );
    const raised = await update(budget, { limits: limits({ maxTokens: 4000n }) }, ["limits"]);
    expect(raised.budget?.status).toBe(BudgetState.OK);
    expect(raised.budget?.currentSpend?.totalTokens).toBe(1000n);
    const def = async () =>
      (await budgetSetOf(stack, t.tenantId))?.budgets.find((b) => b.id === budget.budgetId);
    expect((await def())?.limits).toEqual({ tokens: 4000 });

    const suspended = await update(budget, { status: BudgetState.SUSPENDED }, ["status"]);
    expect(suspended.budget?.status).toBe(BudgetState.SUSPENDED);
    expect((await def())?.suspended).toBe(true);
    const resumed = await update(budget, { status: BudgetState.OK }, ["status"]);
    // The limits raised above stay: only the named field changed.
    expect(resumed.budget).toMatchObject({ status: BudgetState.OK, limits: { maxTokens: 4000n } });
    expect((await def())?.suspended).toBe(false);
    const audit = await auditRows(stack, t.tenantId, budget.budgetId);
    expect(audit.map((a) => a.action)).toEqual([
      "budget.created",
      "budget.updated",
      "budget.suspended",
      "budget.resumed",
    ]);
  });

  it("refuses states that follow from usage, unknown mask paths and bad values", async () => {
    const budget = await newBudget(t);
    const cases: [Partial<Budget>, string[], RegExp][] = [
      [{ status: BudgetState.EXCEEDED }, ["status"], /budget\.status/],
      [{}, ["current_spend"], /update_mask/],
      [{}, [], /update_mask/],
      [{ limits: limits({ maxTokens: -5n }) }, ["limits"], /max_tokens/],
      [{ limits: limits({}) }, ["limits"], /sets no limit/],
      [{ period: BudgetPeriod.CUSTOM }, ["period"], /custom_period_seconds/],
      [{ budgetId: "" }, ["name"], /budget_id/],
      [{ budgetId: "x" }, ["name"], /budget\.budget_id must be a UUID/],
    ];
    for (const [change, paths, message] of cases) {
      await expectCode(update(budget, change, paths), Code.InvalidArgument, message);
    }
  });

  it("changing the period starts counting afresh; renaming keeps usage", async () => {
    const budget = await newBudget(t);
    await setUsage(stack, budget.budgetId, { tokens: 500 });
    const renamed = await update(budget, { name: uniqueBudgetName("renamed") }, ["name"]);
    expect(renamed.budget?.currentSpend?.totalTokens).toBe(500n);
    const daily = await update(budget, { period: BudgetPeriod.DAILY }, ["period"]);
    expect(daily.budget?.period).toBe(BudgetPeriod.DAILY);
    expect(daily.budget?.currentSpend?.totalTokens).toBe(0n);
    const custom = await update(
      budget,
      { period: BudgetPeriod.CUSTOM, customPeriodSeconds: 3600n },
      ["period", "custom_period_seconds"],
    );
    expect(custom.budget).toMatchObject({
      period: BudgetPeriod.CUSTOM,
      customPeriodSeconds: 3600n,
    });
  });

  it("keeps new thresholds given together with a new period", async () => {
    const budget = await newBudget(t);
    const both = await update(
      budget,
      {
        period: BudgetPeriod.DAILY,
        thresholds: [50, 90].map((percent) => create(BudgetThresholdSchema, { percent })),
      },
      ["period", "thresholds"],
    );
    expect(both.budget?.thresholds.map((th) => th.percent)).toEqual([50, 90]);
  });

  it("deletes a budget (gone from the set), refusing while an open envelope uses it", async () => {
    const budget = await newBudget(t);
    const envelope = await insertEnvelope(stack, t.tenantId, { budgetId: budget.budgetId });
    await expectCode(
      t.cost.deleteBudget({ budgetId: budget.budgetId }),
      Code.FailedPrecondition,
      new RegExp(envelope),
    );
    await stack.owner.query("UPDATE envelopes SET status = 'COMPLETED' WHERE id = $1", [envelope]);
    await t.cost.deleteBudget({ budgetId: budget.budgetId });
    await expectCode(t.cost.getBudget({ budgetId: budget.budgetId }), Code.NotFound);
    const set = await budgetSetOf(stack, t.tenantId);
    expect(set?.budgets.some((b) => b.id === budget.budgetId)).toBe(false);
    // The finished envelope stays, without the reference.
    const { rows } = await stack.owner.query("SELECT budget_id FROM envelopes WHERE id = $1", [
      envelope,
    ]);
    expect(rows).toEqual([{ budget_id: null }]);
    await expectCode(t.cost.deleteBudget({ budgetId: budget.budgetId }), Code.NotFound);
  });
});

describe("GetBudgetStatus", () => {
  it("reports usage %, remaining, the next threshold and the state from the current period's usage", async () => {
    const { budgetId } = await newBudget(t, { limits: { maxTokens: 1000n, maxCostUsd: 10 } });
    const status = async () => (await t.cost.getBudgetStatus({ budgetId })).status;
    await setUsage(stack, budgetId, { tokens: 850, costUsd: "2.5" });
    let s = await status();
    expect(s).toMatchObject({
      budgetId,
      status: BudgetState.WARNING,
      tokenUsagePercent: 85,
      costUsagePercent: 25,
      remaining: { maxTokens: 150n, maxCostUsd: 7.5 },
      nextThreshold: { percent: 100 },
    });
    expect(s?.usage).toMatchObject({ totalTokens: 850n, costUsd: 2.5 });
    await setUsage(stack, budgetId, { tokens: 960 });
    expect((await status())?.status).toBe(BudgetState.CRITICAL);
    await setUsage(stack, budgetId, { tokens: 1200 });
    s = await status();
    expect(s).toMatchObject({ status: BudgetState.EXCEEDED, remaining: { maxTokens: 0n } });
    expect(s?.nextThreshold).toBeUndefined();
    // Usage counted in an earlier month no longer counts.
    await setUsage(stack, budgetId, { tokens: 1200, periodStart: "2020-01-01T00:00:00Z" });
    s = await status();
    expect(s).toMatchObject({
      status: BudgetState.OK,
      tokenUsagePercent: 0,
      nextThreshold: { percent: 80 },
    });
  });
});

describe("ListBudgets", () => {
  it("pages through every budget once, oldest first, and filters by workflow, envelope and state", async () => {
    const mine = await costTenant(stack);
    const envelopeId = await insertEnvelope(stack, mine.tenantId);
    const created = [
      await newBudget(mine, { workflowId: "wf-1" }),
      await newBudget(mine, { workflowId: "wf-1" }),
      await newBudget(mine, { workflowId: "wf-2" }),
      await newBudget(mine, { envelopeId }),
      await newBudget(mine),
    ];
    const seen: string[] = [];
    let pageToken = "";
    let pages = 0;
    do {
      const page = await mine.cost.listBudgets({ pageSize: 2, pageToken });
      seen.push(...page.budgets.map((b) => b.budgetId));
      pageToken = page.nextPageToken;
      pages++;
    } while (pageToken);
    expect(pages).toBe(3);
    expect(seen).toEqual(created.map((b) => b.budgetId));

    const ids = async (req: Parameters<typeof mine.cost.listBudgets>[0]) =>
      (await mine.cost.listBudgets(req)).budgets.map((b) => b.budgetId);
    expect(await ids({ workflowId: "wf-1" })).toEqual([created[0]?.budgetId, created[1]?.budgetId]);
    expect(await ids({ envelopeId })).toEqual([created[3]?.budgetId]);
    await setUsage(stack, created[2]?.budgetId as string, { tokens: 5000 });
    await setUsage(stack, created[4]?.budgetId as string, { tokens: 1000 });
    expect(await ids({ status: BudgetState.EXCEEDED })).toEqual([
      created[2]?.budgetId,
      created[4]?.budgetId,
    ]);
    const first = await mine.cost.listBudgets({ status: BudgetState.EXCEEDED, pageSize: 1 });
    expect(first.budgets.map((b) => b.budgetId)).toEqual([created[2]?.budgetId]);
    const second = await mine.cost.listBudgets({
      status: BudgetState.EXCEEDED,
      pageSize: 1,
      pageToken: first.nextPageToken,
    });
    expect(second.budgets.map((b) => b.budgetId)).toEqual([created[4]?.budgetId]);
    expect(second.nextPageToken).toBe("");
    expect(await ids({ status: BudgetState.OK })).toHaveLength(3);

    // A token is tied to its filters; another tenant's list is its own.
    await expectCode(
      mine.cost.listBudgets({ workflowId: "wf-2", pageToken: first.nextPageToken }),
      Code.InvalidArgument,
      /page_token/,
    );
    await expectCode(
      mine.cost.listBudgets({ pageToken: "garbage!" }),
      Code.InvalidArgument,
      /page_token/,
    );
    await expectCode(
      mine.cost.listBudgets({ tenantId: t.tenantId }),
      Code.PermissionDenied,
      /tenant_id/,
    );
    expect(await ids({ tenantId: mine.tenantId, workflowId: "wf-2" })).toEqual([
      created[2]?.budgetId,
    ]);
  });
});
