import { randomUUID } from "node:crypto";
import { timestampFromDate, timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CostService } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { SpendGroupBy } from "../../proto/gen/fulcrum/cost/v1/spend_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import {
  budgetSetOf,
  type CostTenant,
  costTenant,
  insertCostEvents,
  insertEnvelope,
  newBudget,
  setUsage,
} from "../harness/cost-helpers.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { auditRows, expectCode, userWithKey } from "../harness/management-helpers.js";

// CostService's reporting over the real stack: the model price table (own prices over
// the defaults, republished to the edge), GetSpendSummary totals and buckets from
// cost_events rows written straight into PostgreSQL, GetCostSummary over an envelope
// tree, and PredictCost from history, prices and budgets.
let stack: FunctionsStack;

beforeAll(async () => {
  stack = await startFunctionsStack();
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

describe("model prices", () => {
  it("lists the defaults, overrides and restores them, and republishes the set", async () => {
    const t = await costTenant(stack);
    const list = async () => (await t.cost.listModelPrices({})).prices;
    const gpt4o = (await list()).find((p) => p.modelId === "gpt-4o");
    expect(gpt4o).toMatchObject({
      inputUsdPerMillion: 2.5,
      outputUsdPerMillion: 10,
      isDefault: true,
    });
    expect((await t.cost.listModelPrices({})).fallback).toMatchObject({
      inputUsdPerMillion: 3,
      outputUsdPerMillion: 15,
    });

    const set = await t.cost.setModelPrice({
      price: { modelId: "gpt-4o", inputUsdPerMillion: 2, outputUsdPerMillion: 8.123456 },
    });
    expect(set.price).toMatchObject({
      modelId: "gpt-4o",
      isDefault: false,
      outputUsdPerMillion: 8.123456,
    });
    await t.cost.setModelPrice({
      price: { modelId: "my-model", inputUsdPerMillion: 0.1, outputUsdPerMillion: 0.2 },
    });
    expect((await list()).find((p) => p.modelId === "my-model")?.isDefault).toBe(false);
    let published = await budgetSetOf(stack, t.tenantId);
    expect(published?.prices).toMatchObject({
      "gpt-4o": [2, 8.123456],
      "my-model": [0.1, 0.2],
      "gpt-4o-mini": [0.15, 0.6],
    });

    await t.cost.deleteModelPrice({ modelId: "gpt-4o" });
    expect((await list()).find((p) => p.modelId === "gpt-4o")?.isDefault).toBe(true);
    published = await budgetSetOf(stack, t.tenantId);
    expect(published?.prices["gpt-4o"]).toEqual([2.5, 10]);
    await expectCode(
      t.cost.deleteModelPrice({ modelId: "gpt-4o" }),
      Code.NotFound,
      /built-in default/,
    );
    await expectCode(t.cost.deleteModelPrice({ modelId: "never-set" }), Code.NotFound);
    const audit = await auditRows(stack, t.tenantId);
    expect(audit.map((a) => `${a.action}:${a.target_id}`)).toEqual(
      expect.arrayContaining([
        "model_price.set:gpt-4o",
        "model_price.set:my-model",
        "model_price.deleted:gpt-4o",
      ]),
    );
  });

  it("refuses bad prices and callers without budgets.write; another tenant's prices are its own", async () => {
    const t = await costTenant(stack);
    const other = await costTenant(stack);
    await expectCode(
      t.cost.setModelPrice({
        price: { modelId: "m", inputUsdPerMillion: -1, outputUsdPerMillion: 1 },
      }),
      Code.InvalidArgument,
      /input_usd_per_million/,
    );
    await expectCode(
      t.cost.setModelPrice({
        price: { modelId: "x".repeat(201), inputUsdPerMillion: 1, outputUsdPerMillion: 1 },
      }),
      Code.InvalidArgument,
      /model_id/,
    );
    await t.cost.setModelPrice({
      price: { modelId: "shared", inputUsdPerMillion: 1, outputUsdPerMillion: 1 },
    });
    expect((await other.cost.listModelPrices({})).prices.some((p) => p.modelId === "shared")).toBe(
      false,
    );
    const viewer = await userWithKey(stack, t.adminKey, UserRole.VIEWER);
    const asViewer = stack.client(CostService, viewer.key);
    await expectCode(
      asViewer.setModelPrice({
        price: { modelId: "v", inputUsdPerMillion: 1, outputUsdPerMillion: 1 },
      }),
      Code.PermissionDenied,
    );
    expect((await asViewer.listModelPrices({})).prices.length).toBeGreaterThan(5);
  });
});

describe("GetSpendSummary", () => {
  let t: CostTenant;
  const range = {
    startTime: timestampFromDate(new Date("2026-03-01T00:00:00Z")),
    endTime: timestampFromDate(new Date("2026-04-01T00:00:00Z")),
  };
  beforeAll(async () => {
    t = await costTenant(stack);
    const e1 = await insertEnvelope(stack, t.tenantId, {
      workflowId: "wf-1",
      status: "COMPLETED",
      createdAt: "2026-03-02T10:00:00Z",
    });
    const e2 = await insertEnvelope(stack, t.tenantId, {
      workflowId: "wf-2",
      status: "FAILED",
      createdAt: "2026-03-09T10:00:00Z",
    });
    await insertEnvelope(stack, t.tenantId, {
      workflowId: "wf-2",
      status: "BUDGET_EXCEEDED",
      createdAt: "2026-03-10T10:00:00Z",
    });
    await insertEnvelope(stack, t.tenantId, {
      workflowId: "wf-1",
      status: "COMPLETED",
      createdAt: "2026-04-02T10:00:00Z",
    });
    await insertCostEvents(stack, t.tenantId, [
      // Monday 2 March and Sunday 8 March: one ISO week; Monday 9 March: the next.
      {
        envelopeId: e1,
        workflowId: "wf-1",
        modelId: "gpt-4o",
        input: 100,
        output: 50,
        costUsd: "0.000750",
        llm: 1,
        at: "2026-03-02T10:00:00Z",
      },
      {
        envelopeId: e1,
        workflowId: "wf-1",
        modelId: "gpt-4o",
        input: 200,
        output: 100,
        costUsd: "0.001500",
        llm: 1,
        tool: 2,
        at: "2026-03-08T23:59:59Z",
      },
      {
        envelopeId: e2,
        workflowId: "wf-2",
        modelId: "claude-sonnet-4",
        input: 1000,
        output: 10,
        costUsd: "0.003150",
        llm: 1,
        at: "2026-03-09T00:00:00Z",
      },
      // Outside the range (April): never counted.
      {
        workflowId: "wf-1",
        modelId: "gpt-4o",
        input: 9999,
        output: 9999,
        costUsd: "9.000000",
        at: "2026-04-01T00:00:00Z",
      },
    ]);
  });

  it("totals the range, per model, with the executions by outcome", async () => {
    const { summary } = await t.cost.getSpendSummary(range);
    expect(summary).toMatchObject({
      tenantId: t.tenantId,
      totalCostUsd: 0.0054,
      inputTokens: 1300n,
      outputTokens: 160n,
      totalTokens: 1460n,
      llmCalls: 3n,
      toolCalls: 2n,
      executionsTotal: 3n,
      executionsCompleted: 1n,
      executionsFailed: 1n,
      executionsTerminated: 1n,
      buckets: [],
    });
    expect(summary?.modelCosts.map((m) => [m.modelId, m.costUsd, m.callCount])).toEqual([
      ["claude-sonnet-4", 0.00315, 1n],
      ["gpt-4o", 0.00225, 2n],
    ]);
  });

  it("groups by model, workflow, day, ISO week and month; filters one workflow", async () => {
    const keys = async (groupBy: SpendGroupBy, workflowId = "") =>
      (await t.cost.getSpendSummary({ ...range, groupBy, workflowId })).summary?.buckets.map(
        (b) => [
          b.key,
          b.costUsd,
          b.startTime ? new Date(timestampMs(b.startTime)).toISOString() : "",
        ],
      );
    expect(await keys(SpendGroupBy.MODEL)).toEqual([
      ["claude-sonnet-4", 0.00315, ""],
      ["gpt-4o", 0.00225, ""],
    ]);
    expect(await keys(SpendGroupBy.WORKFLOW)).toEqual([
      ["wf-1", 0.00225, ""],
      ["wf-2", 0.00315, ""],
    ]);
    expect(await keys(SpendGroupBy.DAY)).toEqual([
      ["2026-03-02", 0.00075, "2026-03-02T00:00:00.000Z"],
      ["2026-03-08", 0.0015, "2026-03-08T00:00:00.000Z"],
      ["2026-03-09", 0.00315, "2026-03-09T00:00:00.000Z"],
    ]);
    expect(await keys(SpendGroupBy.WEEK)).toEqual([
      ["2026-03-02", 0.00225, "2026-03-02T00:00:00.000Z"],
      ["2026-03-09", 0.00315, "2026-03-09T00:00:00.000Z"],
    ]);
    const month = (await t.cost.getSpendSummary({ ...range, groupBy: SpendGroupBy.MONTH })).summary
      ?.buckets[0];
    expect(
      month && [month.key, month.executions, timestampMs(month.endTime ?? range.endTime)],
    ).toEqual(["2026-03-01", 2n, Date.parse("2026-04-01T00:00:00Z")]);
    const wf2 = (await t.cost.getSpendSummary({ ...range, workflowId: "wf-2" })).summary;
    expect(wf2).toMatchObject({ workflowId: "wf-2", totalCostUsd: 0.00315, executionsTotal: 2n });
  });

  it("refuses another tenant and an empty range", async () => {
    const other = await costTenant(stack);
    await expectCode(t.cost.getSpendSummary({ tenantId: other.tenantId }), Code.PermissionDenied);
    await expectCode(
      t.cost.getSpendSummary({ startTime: range.endTime, endTime: range.startTime }),
      Code.InvalidArgument,
      /end_time/,
    );
    // The other tenant sees none of this tenant's spend.
    const theirs = (await other.cost.getSpendSummary(range)).summary;
    expect(theirs?.totalCostUsd).toBe(0);
  });
});

describe("GetCostSummary", () => {
  it("sums an envelope's own usage and its descendants', per model", async () => {
    const t = await costTenant(stack);
    const parent = await insertEnvelope(stack, t.tenantId);
    const child = await insertEnvelope(stack, t.tenantId, { parentId: parent });
    const grandchild = await insertEnvelope(stack, t.tenantId, { parentId: child });
    const at = new Date().toISOString();
    await insertCostEvents(stack, t.tenantId, [
      {
        envelopeId: parent,
        modelId: "gpt-4o",
        input: 10,
        output: 5,
        costUsd: "0.000075",
        llm: 1,
        at,
      },
      {
        envelopeId: child,
        modelId: "gpt-4o",
        input: 20,
        output: 10,
        costUsd: "0.000150",
        llm: 1,
        at,
      },
      {
        envelopeId: grandchild,
        modelId: "o3",
        input: 30,
        output: 0,
        costUsd: "0.000060",
        tool: 3,
        at,
      },
    ]);
    const summary = async (id: string) => (await t.cost.getCostSummary({ envelopeId: id })).summary;
    const top = await summary(parent);
    expect(top).toMatchObject({
      envelopeId: parent,
      tenantId: t.tenantId,
      inputTokens: 60n,
      outputTokens: 15n,
      totalTokens: 75n,
      costUsd: 0.000285,
      llmCalls: 2n,
      toolCalls: 3n,
    });
    expect(top?.modelCosts.map((m) => [m.modelId, m.inputTokens, m.callCount])).toEqual([
      ["gpt-4o", 30n, 2n],
      ["o3", 30n, 1n],
    ]);
    expect(top?.executionTime?.seconds).toBeGreaterThanOrEqual(0n);
    expect(await summary(grandchild)).toMatchObject({ costUsd: 0.00006, toolCalls: 3n });
    await expectCode(
      t.cost.getCostSummary({ envelopeId: randomUUID() }),
      Code.NotFound,
      /envelope/,
    );
    const other = await costTenant(stack);
    await expectCode(other.cost.getCostSummary({ envelopeId: parent }), Code.NotFound);
  });
});

describe("PredictCost", () => {
  it("estimates from characters 1:1 without history, then from the model's history", async () => {
    const t = await costTenant(stack);
    const first = await t.cost.predictCost({ modelId: "gpt-4o", inputText: "a".repeat(400) });
    expect(first).toMatchObject({
      estimatedInputTokens: 100n,
      estimatedOutputTokens: 100n,
      estimatedTotalTokens: 200n,
      // 100 × $2.5/M + 100 × $10/M
      estimatedCostUsd: 0.00125,
      confidence: 0.18,
      budgetId: "",
      withinBudget: true,
    });
    expect(first.costLowerUsd).toBeLessThan(first.estimatedCostUsd);
    expect(first.costUpperUsd).toBeGreaterThan(first.estimatedCostUsd);
    const at = new Date().toISOString();
    await insertCostEvents(
      stack,
      t.tenantId,
      Array.from({ length: 50 }, () => ({ modelId: "gpt-4o", input: 1000, output: 250, at })),
    );
    const learned = await t.cost.predictCost({ modelId: "gpt-4o", estimatedInputTokens: 1000n });
    expect(learned).toMatchObject({ estimatedOutputTokens: 250n, confidence: 0.9 });
    const given = await t.cost.predictCost({
      modelId: "gpt-4o",
      estimatedInputTokens: 10n,
      expectedOutputTokens: 7n,
    });
    expect(given).toMatchObject({ estimatedOutputTokens: 7n, confidence: 0.8 });
    // The tenant's own price applies.
    await t.cost.setModelPrice({
      price: { modelId: "gpt-4o", inputUsdPerMillion: 1, outputUsdPerMillion: 1 },
    });
    expect(
      (
        await t.cost.predictCost({
          modelId: "gpt-4o",
          estimatedInputTokens: 1_000_000n,
          expectedOutputTokens: 1n,
        })
      ).estimatedCostUsd,
    ).toBe(1.000001);
  });

  it("checks a named budget or the tightest applicable one", async () => {
    const t = await costTenant(stack);
    const roomy = await newBudget(t, { limits: { maxCostUsd: 100 } });
    const tight = await newBudget(t, { workflowId: "wf-tight", limits: { maxCostUsd: 1 } });
    await setUsage(stack, tight.budgetId, { costUsd: "0.999" });
    const req = { modelId: "gpt-4o", estimatedInputTokens: 1000n, expectedOutputTokens: 1000n };
    const named = await t.cost.predictCost({ ...req, budgetId: roomy.budgetId });
    expect(named).toMatchObject({
      budgetId: roomy.budgetId,
      withinBudget: true,
      budgetRemainingUsd: 100,
    });
    const tightest = await t.cost.predictCost({ ...req, workflowId: "wf-tight" });
    expect(tightest).toMatchObject({ budgetId: tight.budgetId, withinBudget: false });
    expect(tightest.budgetRemainingUsd).toBeCloseTo(0.001, 9);
    expect((await t.cost.predictCost(req)).budgetId).toBe(roomy.budgetId);
    await expectCode(t.cost.predictCost({ ...req, budgetId: randomUUID() }), Code.NotFound);
    await expectCode(
      t.cost.predictCost({ ...req, budgetId: "nope" }),
      Code.InvalidArgument,
      /budget_id/,
    );
    await expectCode(t.cost.predictCost({ modelId: "gpt-4o" }), Code.InvalidArgument, /input_text/);
  });
});
