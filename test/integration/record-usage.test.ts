import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Client, Code } from "@connectrpc/connect";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { envelopeCounterId } from "../../core/budget/budget-keys.js";
import { BudgetLedger } from "../../core/budget/ledger.js";
import { periodWindow } from "../../core/budget/periods.js";
import { costMicros } from "../../core/budget/prices.js";
import { reconcileBudgets } from "../../functions/src/budgets/reconcile.js";
import { SETTLE_FAILED_METRIC } from "../../functions/src/usage/record-usage.js";
import { BudgetPeriod, BudgetState } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import { CostService } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { type Event, EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { budgetSetOf, newBudget } from "../harness/cost-helpers.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { tenantEvents } from "../harness/jetstream-events.js";
import { expectCode } from "../harness/management-helpers.js";
import { startTestNats, type TestNats } from "../harness/nats-server.js";
import { tapFetch } from "../harness/redis-faults.js";

// CostService.RecordUsage and budget reconciliation over the real stack (PostgreSQL,
// Redis through the Upstash stand-in, a NATS of the test's own). Budgets and envelopes
// are inserted as rows (their services are tested elsewhere); reservations are taken
// through core/budget's ledger directly, as the edge takes them.
let nats: TestNats;
let nc: NatsConnection;
let stack: FunctionsStack;
let ledger: BudgetLedger;
type Tenant = Awaited<ReturnType<FunctionsStack["createTenant"]>>;
let tenant: Tenant;
let other: Tenant;
let api: Client<typeof CostService>;
const realNow = () => new Date();

beforeAll(async () => {
  nats = await startTestNats();
  stack = await startFunctionsStack(undefined, { natsUrl: nats.url });
  tenant = await stack.createTenant();
  other = await stack.createTenant();
  api = stack.client(CostService, tenant.adminKey);
  ledger = new BudgetLedger({ redis: stack.redis, keys: stack.deps.budgetKeys });
  nc = await connect({ servers: nats.url });
}, 120_000);
afterAll(async () => {
  await nc?.close();
  await stack?.stop();
  await nats?.stop();
});
afterEach(() => {
  stack.deps.now = realNow;
});

interface BudgetInit {
  workflowId?: string;
  envelopeId?: string;
  period?: string;
  maxTokens?: number;
  maxCostUsd?: string;
  tenantId?: string;
}

/** A budget row; returns its id and its current counter key. */
async function budget(init: BudgetInit = {}): Promise<{ id: string; key: string }> {
  const tenantId = init.tenantId ?? tenant.tenantId;
  const { rows } = await stack.owner.query<{ id: string; created: Date }>(
    `INSERT INTO budgets (tenant_id, name, period, max_tokens, max_cost_usd, workflow_id, envelope_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id::text AS id, created_at AS created`,
    [
      tenantId,
      `b-${Math.random().toString(36).slice(2)}`,
      init.period ?? "MONTHLY",
      init.maxTokens ?? 1_000_000,
      init.maxCostUsd ?? null,
      init.workflowId ?? null,
      init.envelopeId ?? null,
    ],
  );
  const row = rows[0];
  if (!row) throw new Error("no budget row");
  return { id: row.id, key: counterKey(row.id, (init.period ?? "MONTHLY") as "MONTHLY") };
}

function counterKey(budgetId: string, period: "MONTHLY" | "HOURLY", nowMs = Date.now()): string {
  const { startMs } = periodWindow(period, {}, nowMs);
  return stack.deps.budgetKeys.counter(tenant.tenantId, budgetId, startMs);
}

async function envelope(parentId?: string, tenantId = tenant.tenantId): Promise<string> {
  const { rows } = await stack.owner.query<{ id: string }>(
    `INSERT INTO envelopes (tenant_id, workflow_id, execution_id, status, parent_envelope_id)
     VALUES ($1, 'wf-usage', $2, 'RUNNING', $3) RETURNING id::text AS id`,
    [tenantId, `x-${Math.random().toString(36).slice(2)}`, parentId ?? null],
  );
  return rows[0]?.id as string;
}

async function costEventCount(tenantId = tenant.tenantId): Promise<number> {
  const { rows } = await stack.owner.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM cost_events WHERE tenant_id = $1",
    [tenantId],
  );
  return rows[0]?.n ?? 0;
}

async function budgetRow(id: string) {
  const { rows } = await stack.owner.query<{
    current_tokens: string;
    current_spend_usd: string;
    current_llm_calls: string;
    thresholds: { percent: number; notified: boolean }[];
    status: string;
  }>("SELECT * FROM budgets WHERE id = $1", [id]);
  return rows[0];
}

async function used(key: string) {
  const [state] = await ledger.readCounters([key]);
  if (!state) throw new Error("no counter state");
  return state;
}

async function reserve(keys: string[], tokens: number, cost = 0) {
  const result = await ledger.reserve({
    tenantId: tenant.tenantId,
    counters: keys.map((key) => ({ key, limits: { tokens: 1_000_000 }, suspended: false })),
    estimate: { tokens, costMicros: cost, llmCalls: 1, toolCalls: 0 },
    ttlMs: 60_000,
  });
  if (!result.ok || !result.reservationId) throw new Error("reservation refused");
  return result.reservationId;
}

describe("settling a reservation", () => {
  it("releases the reservation, counts the usage and writes a cost_events row", async () => {
    const b = await budget({ workflowId: "wf-settle" });
    const reservationId = await reserve([b.key], 1000, 50_000);
    expect((await used(b.key)).reserved.tokens).toBe(1000);

    const res = await api.recordUsage({
      reservationId,
      workflowId: "wf-settle",
      modelId: "gpt-4o-mini",
      inputTokens: 300n,
      outputTokens: 200n,
      llmCalls: 1,
    });
    const cost = costMicros([0.15, 0.6], 300, 200);
    expect(res.costUsd).toBeCloseTo(cost / 1e6, 9);
    const status = res.budgets.find((s) => s.budgetId === b.id);
    expect(status?.usage?.totalTokens).toBe(500n);
    expect(status?.remaining?.maxTokens).toBe(1_000_000n - 500n);

    const after = await used(b.key);
    expect(after.reserved).toEqual({ tokens: 0, costMicros: 0, llmCalls: 0, toolCalls: 0 });
    expect(after.used).toMatchObject({ tokens: 500, inputTokens: 300, outputTokens: 200 });
    expect(after.used.costMicros).toBe(cost);
    expect(after.used.llmCalls).toBe(1);

    const { rows } = await stack.owner.query(
      `SELECT dedupe_key, reservation_id, budget_ids::text[] AS budget_ids, cost_usd::text AS cost
         FROM cost_events WHERE id = $1`,
      [res.costEventId],
    );
    expect(rows[0]).toMatchObject({
      dedupe_key: `res:${reservationId}`,
      reservation_id: reservationId,
      cost: (cost / 1e6).toFixed(6),
    });
    expect(rows[0].budget_ids).toContain(b.id);
    expect(Number((await budgetRow(b.id))?.current_tokens)).toBe(500);
  });

  it("answers each budget's status as GetBudgetStatus reports it", async () => {
    // An input-token-only, INFINITE budget: the cases the two answers once disagreed on
    // (token % of the total only; a period start of 1970).
    const { rows } = await stack.owner.query<{ id: string }>(
      `INSERT INTO budgets (tenant_id, name, period, max_input_tokens, workflow_id)
       VALUES ($1, $2, 'INFINITE', 1000, 'wf-same-status') RETURNING id::text AS id`,
      [tenant.tenantId, `b-${Math.random().toString(36).slice(2)}`],
    );
    const id = rows[0]?.id as string;
    const res = await api.recordUsage({
      workflowId: "wf-same-status",
      costUsd: 0.01,
      inputTokens: 850n,
    });
    const settled = res.budgets.find((s) => s.budgetId === id);
    const read = (await api.getBudgetStatus({ budgetId: id })).status;
    expect(settled?.tokenUsagePercent).toBe(85);
    expect({ ...settled, computedAt: undefined }).toEqual({ ...read, computedAt: undefined });
  });

  it("refuses a second settle of the same reservation or key with AlreadyExists, counted once", async () => {
    const b = await budget({ workflowId: "wf-twice" });
    const reservationId = await reserve([b.key], 100);
    const usage = { reservationId, workflowId: "wf-twice", costUsd: 0.01, inputTokens: 100n };
    await api.recordUsage(usage);
    const before = await costEventCount();
    await expectCode(api.recordUsage(usage), Code.AlreadyExists, /already recorded/);
    // Concurrent retries: exactly one of them may count (here: none, it was recorded).
    const retries = await Promise.allSettled([1, 2, 3].map(() => api.recordUsage(usage)));
    expect(retries.every((r) => r.status === "rejected")).toBe(true);
    expect(await costEventCount()).toBe(before);
    expect((await used(b.key)).used.tokens).toBe(100);
    expect(Number((await budgetRow(b.id))?.current_tokens)).toBe(100);

    const keyed = { idempotencyKey: "call-42", workflowId: "wf-twice", costUsd: 0.5, toolCalls: 1 };
    const first = await Promise.allSettled([1, 2, 3, 4].map(() => api.recordUsage(keyed)));
    expect(first.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    await expectCode(api.recordUsage(keyed), Code.AlreadyExists, /idempotency_key "call-42"/);
    expect((await used(b.key)).used.toolCalls).toBe(1);
  });

  it("records usage whose reservation is unknown or expired against the budgets that apply", async () => {
    const b = await budget({ workflowId: "wf-late" });
    await api.recordUsage({
      reservationId: "0192f000-0000-7000-8000-000000000000",
      workflowId: "wf-late",
      costUsd: 0.25,
      inputTokens: 40n,
    });
    expect((await used(b.key)).used).toMatchObject({ tokens: 40, costMicros: 250_000 });
  });
});

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

describe("bad input", () => {
  const base = { workflowId: "wf-bad", modelId: "gpt-4o" };
  it.each([
    ["negative tokens", { inputTokens: -1n }, Code.InvalidArgument, /input_tokens/],
    [
      "more than a billion tokens",
      { outputTokens: 1_000_000_001n },
      Code.InvalidArgument,
      /output_tokens/,
    ],
    ["a NaN cost", { costUsd: Number.NaN, llmCalls: 1 }, Code.InvalidArgument, /cost_usd/],
    ["an infinite cost", { costUsd: Number.POSITIVE_INFINITY }, Code.InvalidArgument, /cost_usd/],
    ["a negative cost", { costUsd: -0.5 }, Code.InvalidArgument, /cost_usd/],
    ["nothing", {}, Code.InvalidArgument, /tokens, cost, LLM calls|nothing to record/],
    [
      "tokens without a model or cost",
      { modelId: "", inputTokens: 10n },
      Code.InvalidArgument,
      /model_id/,
    ],
    [
      "an occurred_at in the future",
      { inputTokens: 1n, occurredAt: timestampFromDate(new Date(Date.now() + 3_600_000)) },
      Code.InvalidArgument,
      /occurred_at/,
    ],
    [
      "an occurred_at more than 7 days ago",
      { inputTokens: 1n, occurredAt: timestampFromDate(new Date(Date.now() - 8 * 86_400_000)) },
      Code.InvalidArgument,
      /occurred_at/,
    ],
    [
      "a malformed reservation id",
      { inputTokens: 1n, reservationId: "x y" },
      Code.InvalidArgument,
      /reservation_id/,
    ],
    [
      "an unknown envelope",
      { inputTokens: 1n, envelopeId: "0192f000-0000-7000-8000-00000000abcd" },
      Code.NotFound,
      /envelope/,
    ],
    [
      "an envelope id that is no UUID",
      { inputTokens: 1n, envelopeId: "nope" },
      Code.NotFound,
      /envelope/,
    ],
  ] as const)("%s is refused, nothing written", async (_name, change, code, message) => {
    const before = await costEventCount();
    await expectCode(api.recordUsage({ ...base, ...change }), code, message);
    expect(await costEventCount()).toBe(before);
  });

  it("another tenant's envelope is NotFound", async () => {
    const theirs = await envelope(undefined, other.tenantId);
    const before = await costEventCount();
    await expectCode(
      api.recordUsage({ envelopeId: theirs, costUsd: 0.1, inputTokens: 1n }),
      Code.NotFound,
      /envelope/,
    );
    expect(await costEventCount()).toBe(before);
    expect(await costEventCount(other.tenantId)).toBe(0);
  });
});

describe("envelopes", () => {
  it("counts a child's usage in its own and every ancestor's cost summary and counter", async () => {
    const root = await envelope();
    const child = await envelope(root);
    const grandchild = await envelope(child);
    const rootBudget = await budget({ envelopeId: root });
    await api.recordUsage({
      envelopeId: grandchild,
      costUsd: 0.002,
      inputTokens: 70n,
      outputTokens: 30n,
      llmCalls: 1,
      modelId: "m",
    });
    await api.recordUsage({ envelopeId: child, costUsd: 0.001, toolCalls: 2 });
    const { rows } = await stack.owner.query<{ id: string; s: Record<string, unknown> }>(
      "SELECT id::text AS id, cost_summary AS s FROM envelopes WHERE id = ANY($1::uuid[])",
      [[root, child, grandchild]],
    );
    const summary = (id: string) => rows.find((r) => r.id === id)?.s;
    expect(summary(grandchild)).toMatchObject({
      total_tokens: 100,
      cost_micros: 2000,
      tool_calls: 0,
    });
    expect(summary(child)).toMatchObject({ total_tokens: 100, cost_micros: 3000, tool_calls: 2 });
    expect(summary(root)).toMatchObject({ total_tokens: 100, cost_micros: 3000, llm_calls: 1 });
    const rootCounter = stack.deps.budgetKeys.counter(tenant.tenantId, envelopeCounterId(root), 0);
    expect((await used(rootCounter)).used).toMatchObject({
      tokens: 100,
      costMicros: 3000,
      toolCalls: 2,
    });
    expect((await used(rootBudget.key)).used.costMicros).toBe(3000);
    // Envelope counters have no period: they leave Redis 30 days after their last write.
    const ttl = await stack.redis.pttl(rootCounter);
    expect(ttl).toBeGreaterThan(29 * 24 * 3_600_000);
    expect(ttl).toBeLessThanOrEqual(30 * 24 * 3_600_000);
  });
});

/** The budget's BUDGET_* events on the stream (everything stored within `ms`). */
async function budgetEventsOf(budgetId: string, ms = 1500): Promise<Event[]> {
  return tenantEvents(
    nc,
    tenant.tenantId,
    (e) => e.details.case === "budget" && e.details.value.budgetId === budgetId,
    () => false,
    ms,
  );
}

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

/** Deletes every key of the stack's Redis namespace: a flushed Redis, for this stack. */
async function flushNamespace(): Promise<number> {
  let cursor = "0";
  let deleted = 0;
  do {
    const [next, keys] = await stack.redis.scan(cursor, {
      match: `${stack.config.redisKeyNamespace}:*`,
      count: 500,
    });
    cursor = String(next);
    if (keys.length > 0) deleted += await stack.redis.del(...keys);
  } while (cursor !== "0");
  return deleted;
}

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

    const report = await reconcileBudgets(stack.deps);
    expect(report.failures).toEqual([]);
    expect(report.tenants).toBeGreaterThanOrEqual(2);
    const after = await ledger.readCounters([b.key, envKey]);
    expect(after.map((c) => c.used)).toEqual(before.map((c) => c.used));
    // The edge's view of the budget: the same amount left of every limit.
    const refused = await ledger.reserve({
      tenantId: tenant.tenantId,
      counters: [{ key: b.key, limits: { tokens: 5000 }, suspended: false }],
      estimate: { tokens: 3501, costMicros: 0, llmCalls: 0, toolCalls: 0 },
      ttlMs: 1000,
    });
    expect(refused.ok).toBe(false);
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
});
