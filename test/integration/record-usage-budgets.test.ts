import { type Client, Code } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { envelopeCounterId } from "../../core/budget/budget-keys.js";
import type { BudgetLedger } from "../../core/budget/ledger.js";
import { reconcileBudgets } from "../../functions/src/budgets/reconcile.js";
import { SETTLE_FAILED_METRIC } from "../../functions/src/usage/record-usage.js";
import { BudgetPeriod, BudgetState } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import type { CostService } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { budgetSetOf, newBudget } from "../harness/cost-helpers.js";
import type { FunctionsStack } from "../harness/functions-stack.js";
import { expectCode } from "../harness/management-helpers.js";
import { tapFetch } from "../harness/redis-faults.js";
import { startUsageKit, type UsageKit } from "../harness/usage-helpers.js";

// Budgets as CostService.RecordUsage moves them, over the real stack (PostgreSQL, Redis
// through the Upstash stand-in, a NATS of the test's own): execution time, periods and
// thresholds, and reconciliation of Redis from PostgreSQL. Budgets and envelopes are
// inserted as rows; reservations are taken through core/budget's ledger directly, as
// the edge takes them. Settling, bad input and envelopes: record-usage.test.ts.
let kit: UsageKit;
let stack: FunctionsStack;
let ledger: BudgetLedger;
let tenant: UsageKit["tenant"];
let api: Client<typeof CostService>;
const realNow = () => new Date();

beforeAll(async () => {
  kit = await startUsageKit();
  ({ stack, ledger, tenant, api } = kit);
}, 120_000);
afterAll(async () => {
  await kit?.stop();
});
afterEach(() => {
  stack.deps.now = realNow;
});

const budget: UsageKit["budget"] = (init) => kit.budget(init);
const counterKey: UsageKit["counterKey"] = (id, period, nowMs) => kit.counterKey(id, period, nowMs);
const envelope: UsageKit["envelope"] = (parentId, tenantId) => kit.envelope(parentId, tenantId);
const budgetRow: UsageKit["budgetRow"] = (id) => kit.budgetRow(id);
const used: UsageKit["used"] = (key) => kit.used(key);
const reserve: UsageKit["reserve"] = (keys, tokens, cost) => kit.reserve(keys, tokens, cost);
const budgetEventsOf: UsageKit["budgetEventsOf"] = (id, ms) => kit.budgetEventsOf(id, ms);
const flushNamespace: UsageKit["flushNamespace"] = () => kit.flushNamespace();

/** The bodies of the Upstash REST requests sent until restore(), in order. */
function recordRedisRequests(): { bodies: string[]; restore(): void } {
  const original = globalThis.fetch;
  const bodies: string[] = [];
  globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
    if (typeof init?.body === "string") bodies.push(init.body);
    return original(input, init);
  }) as typeof fetch;
  return {
    bodies,
    restore: () => {
      globalThis.fetch = original;
    },
  };
}

describe("execution time", () => {
  it("counts execution_time against max_execution_time: once used up, reservations refuse", async () => {
    const b = await newBudget(
      { ...tenant, cost: api },
      {
        workflowId: "wf-exec",
        period: BudgetPeriod.MONTHLY,
        limits: { maxTokens: 1_000_000n, maxExecutionTime: { seconds: 60n } },
      },
    );
    // The edge reserves with the limits the BudgetSet publishes.
    const def = (await budgetSetOf(stack, tenant.tenantId))?.budgets.find(
      (d) => d.id === b.budgetId,
    );
    expect(def?.limits).toEqual({ tokens: 1_000_000, executionMs: 60_000 });
    const counters = [
      { key: counterKey(b.budgetId, "MONTHLY"), limits: def?.limits ?? {}, suspended: false },
    ];
    const probe = (tokens: number) =>
      ledger.reserve({
        tenantId: tenant.tenantId,
        counters,
        estimate: { tokens, costMicros: 0, llmCalls: 0, toolCalls: 0 },
        ttlMs: 60_000,
      });
    const r = await probe(10);
    if (!r.ok || !r.reservationId) throw new Error("expected a reservation");
    const usage = { workflowId: "wf-exec", costUsd: 0.001, inputTokens: 10n };
    await api.recordUsage({
      ...usage,
      reservationId: r.reservationId,
      executionTime: { seconds: 45n },
    });
    expect(await probe(10)).toMatchObject({
      ok: true,
      remaining: [{ remaining: { executionMs: 15_000 } }],
    });

    const res = await api.recordUsage({
      ...usage,
      idempotencyKey: "exec-2",
      executionTime: { seconds: 15n },
    });
    expect(await probe(0)).toMatchObject({
      ok: false,
      refused: [{ reason: "EXHAUSTED", dimension: "executionMs", used: 60_000, limit: 60_000 }],
    });
    const status = (await api.getBudgetStatus({ budgetId: b.budgetId })).status;
    expect(status?.status).toBe(BudgetState.EXCEEDED);
    expect(status?.remaining?.maxExecutionTime?.seconds).toBe(0n);
    expect(status?.nextThreshold).toBeUndefined(); // 100 % reached: no threshold left
    expect(res.budgets.find((s) => s.budgetId === b.budgetId)?.status).toBe(BudgetState.EXCEEDED);
    const { rows } = await stack.owner.query(
      "SELECT current_execution_ms::int AS ms FROM budgets WHERE id = $1",
      [b.budgetId],
    );
    expect(rows[0]?.ms).toBe(60_000);
  });
});

describe("periods and thresholds", () => {
  it("emits each threshold event once per period, and resets at the period's end", async () => {
    const start = Date.now();
    stack.deps.now = () => new Date(start);
    const b = await budget({ workflowId: "wf-period", period: "HOURLY", maxTokens: 1000 });
    const settle = (tokens: number) =>
      api.recordUsage({ workflowId: "wf-period", costUsd: 0, inputTokens: BigInt(tokens) });

    // Ten concurrent settles carry the budget past 80 %: one warning, not ten.
    await Promise.all(Array.from({ length: 10 }, () => settle(85)));
    await settle(10);
    await settle(200); // 1060 tokens: exceeded
    await settle(5);
    let row = await budgetRow(b.id);
    expect(Number(row?.current_tokens)).toBe(1065);
    expect(row?.status).toBe("EXCEEDED");
    expect(row?.thresholds.map((t) => t.notified)).toEqual([true, true]);

    // Two hours later (a later period even if the budget was created on an hour's edge):
    // the budget resets on its first settle, and warns again once.
    const later = start + 2 * 3_600_000;
    stack.deps.now = () => new Date(later);
    const res = await settle(100);
    expect(res.budgets.find((s) => s.budgetId === b.id)?.usage?.totalTokens).toBe(100n);
    await settle(750);
    await settle(1);
    row = await budgetRow(b.id);
    expect(Number(row?.current_tokens)).toBe(851);
    expect(row?.status).toBe("WARNING");

    const types = (await budgetEventsOf(b.id)).map((e) => EventType[e.eventType]);
    expect(types).toEqual(["BUDGET_WARNING", "BUDGET_EXCEEDED", "BUDGET_RESET", "BUDGET_WARNING"]);
    const next = counterKey(b.id, "HOURLY", later);
    expect((await used(next)).used.tokens).toBe(851);
  });
});

describe("reconciliation", () => {
  it("after a Redis flush restores the same remaining budget", async () => {
    const root = await envelope();
    const b = await budget({ workflowId: "wf-flush", maxTokens: 5000, maxCostUsd: "2" });
    await api.recordUsage({
      workflowId: "wf-flush",
      envelopeId: root,
      costUsd: 0.3,
      inputTokens: 1200n,
      llmCalls: 2,
    });
    await api.recordUsage({
      workflowId: "wf-flush",
      costUsd: 0.1,
      outputTokens: 300n,
      toolCalls: 1,
    });
    const envKey = stack.deps.budgetKeys.counter(tenant.tenantId, envelopeCounterId(root), 0);
    const before = await ledger.readCounters([b.key, envKey]);
    expect(before[0]?.used).toMatchObject({ tokens: 1500, costMicros: 400_000 });

    expect(await flushNamespace()).toBeGreaterThan(0);
    expect((await used(b.key)).used.tokens).toBe(0);
    // The edge's view: reserve as the edge does, guarded by the tenant's BudgetSet.
    const setKey = stack.deps.budgetKeys.budgetSet(tenant.tenantId);
    const edgeReserve = () =>
      ledger.reserve({
        tenantId: tenant.tenantId,
        counters: [{ key: b.key, limits: { tokens: 5000 }, suspended: false }],
        estimate: { tokens: 3501, costMicros: 0, llmCalls: 0, toolCalls: 0 },
        ttlMs: 1000,
        budgetSetKey: setKey,
      });
    // Counters at 0 would admit it: the missing set refuses instead.
    expect(await edgeReserve()).toMatchObject({ ok: false, unsynced: true });

    const requests = recordRedisRequests();
    let report: Awaited<ReturnType<typeof reconcileBudgets>>;
    try {
      report = await reconcileBudgets(stack.deps);
    } finally {
      requests.restore();
    }
    expect(report.failures).toEqual([]);
    expect(report.tenants).toBeGreaterThanOrEqual(2);
    // The set comes back only after the counters: a present set means they were restored.
    const restoredAt = requests.bodies.findIndex((body) => body.includes(b.key));
    const publishedAt = requests.bodies.findLastIndex((body) => body.includes(setKey));
    expect(restoredAt).toBeGreaterThanOrEqual(0);
    expect(publishedAt).toBeGreaterThan(restoredAt);
    const after = await ledger.readCounters([b.key, envKey]);
    expect(after.map((c) => c.used)).toEqual(before.map((c) => c.used));
    // The same amount left of every limit.
    const refused = await edgeReserve();
    expect(refused).toMatchObject({ ok: false, refused: [{ reason: "WOULD_EXCEED" }] });
    // The envelope's record is back too.
    expect(
      await stack.redis.get(stack.deps.budgetKeys.envelope(tenant.tenantId, root)),
    ).not.toBeNull();
  });

  it("repairs a settle whose Redis step failed after the commit", async () => {
    const b = await budget({ workflowId: "wf-redis-down" });
    const reservationId = await reserve([b.key], 400);
    const failures = () =>
      stack.deps.metrics.render().match(new RegExp(`^${SETTLE_FAILED_METRIC} (\\d+)`, "m"))?.[1];
    const failedBefore = Number(failures() ?? 0);
    const tap = tapFetch(stack.config.redisRestUrl);
    tap.down = true;
    const cutAt = Date.now();
    let res: Awaited<ReturnType<typeof api.recordUsage>>;
    try {
      res = await api.recordUsage({
        reservationId,
        workflowId: "wf-redis-down",
        costUsd: 0.05,
        inputTokens: 321n,
      });
      // @upstash/redis retries a failed request for ~4.3 s after our 1 s deadline gave
      // up on it: Redis stays cut off until those retries have failed too.
      await new Promise((r) => setTimeout(r, Math.max(0, cutAt + 5500 - Date.now())));
    } finally {
      tap.restore();
    }
    expect(res.costEventId).not.toBe("");
    expect(Number(failures())).toBe(failedBefore + 1);
    // PostgreSQL counted it; Redis did not (the reservation is still held).
    expect(Number((await budgetRow(b.id))?.current_tokens)).toBe(321);
    expect((await used(b.key)).used.tokens).toBe(0);

    await reconcileBudgets(stack.deps, { tenantIds: [tenant.tenantId] });
    expect((await used(b.key)).used).toMatchObject({ tokens: 321, costMicros: 50_000 });
    // A retried settle is refused and changes nothing.
    await expectCode(
      api.recordUsage({
        reservationId,
        workflowId: "wf-redis-down",
        costUsd: 0.05,
        inputTokens: 321n,
      }),
      Code.AlreadyExists,
    );
    expect((await used(b.key)).used.tokens).toBe(321);
  });

  it("publishes a budget event whose publish failed after the commit (outbox row)", async () => {
    const b = await budget({ workflowId: "wf-nats-down", maxTokens: 1000 });
    // NATS unreachable after the commit: every publish of the call fails.
    const publisher = stack.deps.eventPublisher;
    const publish = publisher.publish;
    publisher.publish = async () => {
      throw new Error("NATS unavailable (test)");
    };
    try {
      await api.recordUsage({ workflowId: "wf-nats-down", costUsd: 0, inputTokens: 850n });
    } finally {
      publisher.publish = publish;
    }
    expect((await budgetRow(b.id))?.thresholds.map((t) => t.notified)).toEqual([true, false]);
    const { rows } = await stack.owner.query<{ id: string; action: string }>(
      "SELECT id::text AS id, action FROM events WHERE tenant_id = $1 AND target_id = $2",
      [tenant.tenantId, b.id],
    );
    expect(rows.map((r) => r.action)).toEqual(["budget.warning"]);
    expect(await budgetEventsOf(b.id, 500)).toEqual([]);

    // Twice: the second republish is a duplicate JetStream drops (Nats-Msg-Id = event id).
    for (let run = 0; run < 2; run++) {
      const report = await reconcileBudgets(stack.deps, { tenantIds: [tenant.tenantId] });
      expect(report.failures).toEqual([]);
    }
    const published = await budgetEventsOf(b.id);
    expect(published.map((e) => [EventType[e.eventType], e.eventId])).toEqual([
      ["BUDGET_WARNING", rows[0]?.id],
    ]);
  });
});
