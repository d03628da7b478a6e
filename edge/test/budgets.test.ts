import { describe, expect, it } from "vitest";
import { BudgetState } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import {
  Decision,
  DecisionReason,
  Phase,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { eventually } from "./audit-stream.js";
import {
  afterRefresh,
  budget,
  budgetKeys,
  freshTenant,
  namespace,
  publishBudgets,
  publishEnvelope,
  testRedis,
} from "./budget-tenant.js";
import { workerClient } from "./client.js";

/**
 * Budgets and envelopes at the edge (issue 6, flow 1) against the tier's real Redis:
 * each test has a tenant of its own, its BudgetSet and EnvelopeRecords written as
 * functions write them.
 */
const policies = (key: string) => workerClient(PolicyService, { apiKey: key });
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function counterField(tenantId: string, counterId: string, field: string, start = 0) {
  const value = await testRedis().hget<string>(
    budgetKeys().counter(tenantId, counterId, start),
    field,
  );
  return Number(value ?? 0);
}

describe("a tenant without budgets", () => {
  it("decides as before: no budget in the answer", async () => {
    const { key } = await freshTenant("nobudget");
    const r = await policies(key).checkPolicy({ context: { estimatedTokens: 500 } });
    expect(r.decision).toBe(Decision.ALLOW);
    expect(r.reason).toBe(DecisionReason.POLICY);
    expect(r.budget).toBeUndefined();
  });
});

describe("tenant budgets", () => {
  it("reserves each call's tokens until the budget is full, then denies with the budget named", async () => {
    const { tenantId, key } = await freshTenant("tokens");
    await publishBudgets(tenantId, [budget("b-tok", { limits: { tokens: 1000 } })]);
    const call = () => policies(key).checkPolicy({ context: { estimatedTokens: 400 } });

    const first = await call();
    expect(first.decision).toBe(Decision.ALLOW);
    expect(first.budget?.reservationId).toMatch(UUID_V7);
    expect(Number(first.budget?.reservedTokens)).toBe(400);
    expect(first.budget?.reservedCostUsd).toBeGreaterThan(0);
    expect(first.budget?.expiresAt).toBeDefined();
    expect(first.budget?.budgets).toHaveLength(1);
    expect(first.budget?.budgets[0]).toMatchObject({
      budgetId: "b-tok",
      scope: "tenant",
      exceeded: false,
      status: BudgetState.OK,
    });
    expect(Number(first.budget?.budgets[0]?.tokensRemaining)).toBe(600);
    // The reservation is in Redis, as RecordUsage will find it.
    const members = await testRedis().hget<string>(
      budgetKeys().reservation(tenantId, first.budget?.reservationId ?? ""),
      "members",
    );
    expect(members).toContain(first.budget?.reservationId);
    expect(await counterField(tenantId, "b-tok", "r_tok")).toBe(400);

    const second = await call();
    expect(second.decision).toBe(Decision.ALLOW);
    expect(Number(second.budget?.budgets[0]?.tokensRemaining)).toBe(200);
    expect(second.budget?.budgets[0]?.status).toBe(BudgetState.WARNING);

    const third = await call();
    expect(third.decision).toBe(Decision.DENY);
    expect(third.reason).toBe(DecisionReason.BUDGET_EXCEEDED);
    expect(third.allowed).toBe(false);
    expect(third.budget?.reservationId).toBe("");
    expect(third.budget?.budgets[0]).toMatchObject({ budgetId: "b-tok", exceeded: true });
    expect(third.budget?.budgets[0]?.reason).toContain('budget "Budget b-tok" (b-tok)');
    expect(third.budget?.budgets[0]?.reason).toContain("would exceed");
    expect(third.reasons[0]).toContain("tokens (400) would exceed the limit");
    expect(await counterField(tenantId, "b-tok", "r_tok")).toBe(800);
  });

  it("denies every call once the used amount reached the limit, even without an estimate", async () => {
    const { tenantId, key } = await freshTenant("exhausted");
    await publishBudgets(tenantId, [budget("b-cost", { limits: { costMicros: 1_000_000 } })]);
    await testRedis().hset(budgetKeys().counter(tenantId, "b-cost", 0), { u_cost: 1_000_000 });
    const r = await policies(key).checkPolicy({});
    expect(r.decision).toBe(Decision.DENY);
    expect(r.reason).toBe(DecisionReason.BUDGET_EXCEEDED);
    expect(r.budget?.budgets[0]).toMatchObject({
      exceeded: true,
      status: BudgetState.EXCEEDED,
      costRemainingUsd: 0,
    });
    expect(r.budget?.budgets[0]?.reason).toContain("cost exhausted ($1 of $1 used)");
  });

  it("denies every call once the budget's execution time is used up", async () => {
    const { tenantId, key } = await freshTenant("exec");
    await publishBudgets(tenantId, [
      budget("b-exec", { limits: { tokens: 1_000_000, executionMs: 60_000 } }),
    ]);
    const counter = budgetKeys().counter(tenantId, "b-exec", 0);
    await testRedis().hset(counter, { u_exec: 59_000 });
    expect((await policies(key).checkPolicy({})).decision).toBe(Decision.ALLOW);
    // RecordUsage's settle raised it to the limit: execution time is never reserved.
    await testRedis().hset(counter, { u_exec: 60_000 });
    const r = await policies(key).checkPolicy({ context: { estimatedTokens: 10 } });
    expect(r.decision).toBe(Decision.DENY);
    expect(r.reason).toBe(DecisionReason.BUDGET_EXCEEDED);
    expect(r.budget?.budgets[0]).toMatchObject({ exceeded: true, status: BudgetState.EXCEEDED });
    expect(r.budget?.budgets[0]?.reason).toContain("execution time exhausted (60s of 60s used)");
    expect(r.reasons[0]).toContain("execution time");
  });

  it("releases the reservation when the policies deny the call", async () => {
    const { tenantId, key } = await freshTenant("release");
    await publishBudgets(tenantId, [budget("b-rel", { limits: { tokens: 10_000 } })]);
    const r = await policies(key).checkPolicy({
      context: { estimatedTokens: 700, toolNames: ["delete_user"] },
    });
    expect(r.decision).toBe(Decision.DENY);
    expect(r.reason).toBe(DecisionReason.POLICY);
    expect(r.budget?.reservationId).toBe("");
    expect(r.budget?.budgets[0]?.exceeded).toBe(false);
    await eventually(
      async () => ((await counterField(tenantId, "b-rel", "r_tok")) === 0 ? true : undefined),
      "the reservation released",
    );
  });

  it("counts only workflow budgets of the call's workflow, and LLM / tool calls by phase", async () => {
    const { tenantId, key } = await freshTenant("workflow");
    await publishBudgets(tenantId, [
      budget("b-wf", { scope: "workflow", workflowId: "wf-a", limits: { llmCalls: 1 } }),
      budget("b-tools", { limits: { toolCalls: 2 } }),
    ]);
    const llm = (workflowId: string) =>
      policies(key).checkPolicy({ context: { workflowId, phase: Phase.PRE_LLM_CALL } });
    expect((await llm("wf-a")).decision).toBe(Decision.ALLOW);
    const denied = await llm("wf-a");
    expect(denied.reason).toBe(DecisionReason.BUDGET_EXCEEDED);
    expect(denied.reasons[0]).toContain("LLM calls");
    // Another workflow is not under b-wf.
    const other = await llm("wf-b");
    expect(other.decision).toBe(Decision.ALLOW);
    expect(other.budget?.budgets.map((b) => b.budgetId)).toEqual(["b-tools"]);

    const tools = await policies(key).checkPolicy({
      context: { phase: Phase.PRE_TOOL_CALL, toolNames: ["search", "fetch", "read"] },
    });
    expect(tools.reason).toBe(DecisionReason.BUDGET_EXCEEDED);
    expect(tools.reasons[0]).toContain("tool calls (3) would exceed");
  });

  it("a suspended budget denies everything", async () => {
    const { tenantId, key } = await freshTenant("suspended");
    await publishBudgets(tenantId, [budget("b-s", { limits: { tokens: 10 }, suspended: true })]);
    const r = await policies(key).checkPolicy({});
    expect(r.reason).toBe(DecisionReason.BUDGET_EXCEEDED);
    expect(r.budget?.budgets[0]?.status).toBe(BudgetState.SUSPENDED);
    expect(r.reasons[0]).toContain("is suspended");
  });

  it("a budget set that cannot be read fails closed", async () => {
    const { tenantId, key } = await freshTenant("corrupt");
    await testRedis().set(budgetKeys().budgetSet(tenantId), "{not json");
    const r = await policies(key).checkPolicy({});
    expect(r.decision).toBe(Decision.DENY);
    expect(r.reason).toBe(DecisionReason.FAIL_CLOSED);
    expect(r.budget?.failed).toBe(true);
    expect(r.failureMode?.component).toBe("budget");
  });

  it("fails closed after Redis lost the tenant's budgets, until they are restored", async () => {
    const { tenantId, key } = await freshTenant("flushed");
    const budgets = [budget("b-full", { limits: { tokens: 1000 } })];
    await publishBudgets(tenantId, budgets);
    const call = () => policies(key).checkPolicy({ context: { estimatedTokens: 600 } });
    expect((await call()).decision).toBe(Decision.ALLOW);

    // As a flush does: the set, the counters, their reservations. Read as "no budgets"
    // with counters at 0, the next call would pass a budget that is 60 % reserved.
    const redis = testRedis();
    const lost = await redis.keys(`${namespace()}:budget:{${tenantId}}*`);
    expect(lost).toContain(budgetKeys().budgetSet(tenantId));
    await redis.del(...lost);
    await afterRefresh();
    const denied = await call();
    expect(denied.decision).toBe(Decision.DENY);
    expect(denied.reason).toBe(DecisionReason.FAIL_CLOSED);
    expect(denied.budget?.failed).toBe(true);
    expect(denied.failureMode?.component).toBe("budget");
    expect(denied.reasons[0]).toContain("being restored from PostgreSQL (Redis lost them)");
    expect(await redis.keys(`${namespace()}:budget:{${tenantId}}*`)).toEqual([]);

    // Reconciliation restores the counters, then publishes the set last.
    await redis.hset(budgetKeys().counter(tenantId, "b-full", 0), { u_tok: 100 });
    await publishBudgets(tenantId, budgets);
    const restored = await call();
    expect(restored.decision).toBe(Decision.ALLOW);
    expect(Number(restored.budget?.budgets[0]?.tokensRemaining)).toBe(300);
  });
});

describe("envelopes", () => {
  const envelopeCall = (key: string, context: Record<string, unknown>) =>
    policies(key).checkPolicy({ context: { envelopeId: "env-1", ...context } });

  it("denies calls an envelope does not admit, saying why", async () => {
    const { tenantId, key } = await freshTenant("envelope");
    await publishEnvelope(tenantId, {
      id: "env-1",
      allowedModels: ["gpt-4o"],
      allowedTools: ["search"],
    });
    const ok = await envelopeCall(key, { modelId: "gpt-4o", toolNames: ["search"] });
    expect(ok.decision).toBe(Decision.ALLOW);

    const model = await envelopeCall(key, { modelId: "o3" });
    expect(model.reason).toBe(DecisionReason.ENVELOPE);
    expect(model.reasons[0]).toBe("model o3 is not allowed in envelope env-1 (allowed: gpt-4o)");

    const tool = await envelopeCall(key, { toolNames: ["search", "shell"] });
    expect(tool.reason).toBe(DecisionReason.ENVELOPE);
    expect(tool.reasons[0]).toContain("tool shell is not allowed in envelope env-1");

    await publishEnvelope(tenantId, { id: "env-1", status: "COMPLETED" });
    const done = await envelopeCall(key, {});
    expect(done.decision).toBe(Decision.DENY);
    expect(done.reason).toBe(DecisionReason.ENVELOPE);
    expect(done.reasons[0]).toContain("envelope env-1 is COMPLETED");

    await publishEnvelope(tenantId, { id: "env-1", deadlineMs: Date.now() - 1000 });
    const late = await envelopeCall(key, {});
    expect(late.reason).toBe(DecisionReason.ENVELOPE);
    expect(late.reasons[0]).toContain("passed its deadline");

    // An unknown envelope brings no envelope governance.
    const unknown = await policies(key).checkPolicy({ context: { envelopeId: "env-none" } });
    expect(unknown.decision).toBe(Decision.ALLOW);
  });

  it("a child envelope can never spend past its parent's limits", async () => {
    const { tenantId, key } = await freshTenant("children");
    await publishEnvelope(tenantId, { id: "parent", limits: { tokens: 500 } });
    await publishEnvelope(tenantId, {
      id: "child",
      parentId: "parent",
      ancestors: ["parent"],
      limits: { tokens: 1000 },
    });
    const r = await policies(key).checkPolicy({
      context: { envelopeId: "child", estimatedTokens: 600 },
    });
    expect(r.reason).toBe(DecisionReason.BUDGET_EXCEEDED);
    const byId = Object.fromEntries((r.budget?.budgets ?? []).map((b) => [b.budgetId, b]));
    expect(byId["envelope:parent"]?.exceeded).toBe(true);
    expect(byId["envelope:child"]?.exceeded).toBe(false);
    expect(r.reasons[0]).toContain("envelope parent");

    const fits = await policies(key).checkPolicy({
      context: { envelopeId: "child", estimatedTokens: 300 },
    });
    expect(fits.decision).toBe(Decision.ALLOW);
    expect(await counterField(tenantId, "env:parent", "r_tok")).toBe(300);
    expect(await counterField(tenantId, "env:child", "r_tok")).toBe(300);
  });

  it("envelope-scope budgets and the envelope's governance budget apply", async () => {
    const { tenantId, key } = await freshTenant("envbudget");
    await publishBudgets(tenantId, [
      budget("b-env", { scope: "envelope", envelopeId: "root", limits: { tokens: 100 } }),
      budget("b-gov", { scope: "workflow", workflowId: "other", limits: { tokens: 1000 } }),
    ]);
    await publishEnvelope(tenantId, { id: "root", budgetId: "b-gov" });
    await publishEnvelope(tenantId, { id: "leaf", parentId: "root", ancestors: ["root"] });
    const r = await policies(key).checkPolicy({
      context: { envelopeId: "leaf", estimatedTokens: 50 },
    });
    expect(r.decision).toBe(Decision.ALLOW);
    expect(r.budget?.budgets.map((b) => b.budgetId).sort()).toEqual(["b-env", "b-gov"]);
  });
});
