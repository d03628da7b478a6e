import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Client, Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelopeCounterId } from "../../core/budget/budget-keys.js";
import { costMicros } from "../../core/budget/prices.js";
import type { CostService } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import type { FunctionsStack } from "../harness/functions-stack.js";
import { expectCode } from "../harness/management-helpers.js";
import { startUsageKit, type UsageKit } from "../harness/usage-helpers.js";

// CostService.RecordUsage over the real stack (PostgreSQL, Redis through the Upstash
// stand-in, a NATS of the test's own): settling, bad input, envelopes. Budgets and
// envelopes are inserted as rows (their services are tested elsewhere); reservations are
// taken through core/budget's ledger directly, as the edge takes them. Periods,
// thresholds, reconciliation and execution time: record-usage-budgets.test.ts.
let kit: UsageKit;
let stack: FunctionsStack;
let tenant: UsageKit["tenant"];
let other: UsageKit["tenant"];
let api: Client<typeof CostService>;

beforeAll(async () => {
  kit = await startUsageKit();
  ({ stack, tenant, other, api } = kit);
}, 120_000);
afterAll(async () => {
  await kit?.stop();
});

const budget: UsageKit["budget"] = (init) => kit.budget(init);
const envelope: UsageKit["envelope"] = (parentId, tenantId) => kit.envelope(parentId, tenantId);
const costEventCount: UsageKit["costEventCount"] = (tenantId) => kit.costEventCount(tenantId);
const budgetRow: UsageKit["budgetRow"] = (id) => kit.budgetRow(id);
const used: UsageKit["used"] = (key) => kit.used(key);
const reserve: UsageKit["reserve"] = (keys, tokens, cost) => kit.reserve(keys, tokens, cost);

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

describe("settling by reservation", () => {
  const envCounter = (id: string) =>
    stack.deps.budgetKeys.counter(tenant.tenantId, envelopeCounterId(id), 0);

  it("counts at least the calls the reservation reserved, so call limits are reached", async () => {
    const b = await budget({ workflowId: "wf-calls", maxToolCalls: 2 });
    const limits = { toolCalls: 2 };
    // Settled as the SDK does by default: a cost, 0 calls.
    const settle = (reservationId: string | undefined) =>
      api.recordUsage({ reservationId, workflowId: "wf-calls", costUsd: 0.001 });
    await settle(await kit.reserveCalls([{ key: b.key, limits }], { llmCalls: 1 }));
    await settle(await kit.reserveCalls([{ key: b.key, limits }], { toolCalls: 1 }));
    const row = await budgetRow(b.id);
    expect([Number(row?.current_llm_calls), Number(row?.current_tool_calls)]).toEqual([1, 1]);
    expect((await used(b.key)).used).toMatchObject({ llmCalls: 1, toolCalls: 1 });

    // A settle reporting more than reserved counts what it reports.
    const two = await kit.reserveCalls([{ key: b.key, limits }], { toolCalls: 1 });
    await api.recordUsage({ reservationId: two, workflowId: "wf-calls", toolCalls: 1, costUsd: 0 });
    expect((await used(b.key)).used.toolCalls).toBe(2);
    const refused = await kit.ledger.reserve({
      tenantId: tenant.tenantId,
      counters: [{ key: b.key, limits, suspended: false }],
      estimate: { tokens: 0, costMicros: 0, llmCalls: 0, toolCalls: 1 },
      ttlMs: 60_000,
    });
    expect(refused).toMatchObject({ ok: false, refused: [{ dimension: "toolCalls" }] });
  });

  it("charges the envelope the reservation was made for when the settle names none", async () => {
    const root = await envelope();
    const child = await envelope(root);
    // The edge reserves on the envelope's and every ancestor's counter; listed root first
    // here, as the deepest one (not the first) is the call's envelope.
    const counters = [{ key: envCounter(root) }, { key: envCounter(child) }];
    const reservationId = await kit.reserveCalls(counters, { toolCalls: 3 });
    expect((await used(envCounter(child))).reserved.toolCalls).toBe(3);
    const res = await api.recordUsage({ reservationId, costUsd: 0.004, inputTokens: 40n });

    const { rows } = await stack.owner.query<{ id: string; s: Record<string, unknown> }>(
      "SELECT id::text AS id, cost_summary AS s FROM envelopes WHERE id = ANY($1::uuid[])",
      [[root, child]],
    );
    for (const id of [root, child]) {
      expect(rows.find((r) => r.id === id)?.s).toMatchObject({ cost_micros: 4000, tool_calls: 3 });
      const counter = await used(envCounter(id));
      expect(counter.used).toMatchObject({ costMicros: 4000, tokens: 40, toolCalls: 3 });
      expect(counter.reserved.toolCalls).toBe(0);
    }
    const event = await stack.owner.query(
      "SELECT envelope_id::text AS envelope_id, tool_calls FROM cost_events WHERE id = $1",
      [res.costEventId],
    );
    expect(event.rows[0]).toEqual({ envelope_id: child, tool_calls: 3 });
  });

  it("refuses an envelope_id the reservation was not made for, nothing written", async () => {
    const mine = await envelope();
    const another = await envelope();
    const reservationId = await kit.reserveCalls([{ key: envCounter(mine) }], { llmCalls: 1 });
    const before = await costEventCount();
    await expectCode(
      api.recordUsage({ reservationId, envelopeId: another, costUsd: 0.01 }),
      Code.InvalidArgument,
      /envelope_id.*another envelope/,
    );
    expect(await costEventCount()).toBe(before);
    expect((await used(envCounter(mine))).reserved.llmCalls).toBe(1);
    const { rows } = await stack.owner.query<{ s: Record<string, unknown> }>(
      "SELECT cost_summary AS s FROM envelopes WHERE id = ANY($1::uuid[])",
      [[mine, another]],
    );
    expect(rows.every((r) => !r.s.cost_micros)).toBe(true);
  });
});
