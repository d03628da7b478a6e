import { describe, expect, it } from "vitest";
import { budgetLedgerFixture, estimate, T } from "../harness/budget-ledger-fixture.js";

// The reserve script's bounds against real Redis: reserved sums never leave the range
// where Lua's doubles are exact and HINCRBY cannot overflow; nothing is reserved against
// a tenant whose BudgetSet Redis lost.
const fx = budgetLedgerFixture();

describe("reserved sums past 2^53", () => {
  it("refuses instead of reserving, on a dimension without a limit too", async () => {
    const ledger = fx.ledgerOn();
    const budget = fx.counter("calls", { llmCalls: 1_000 });
    // Outstanding reservations of a budget without a cost limit have added up to near 2^53.
    await fx.direct.hset(budget.key, "r_cost", "9007199254740000");
    const r = await ledger.reserve({
      tenantId: T,
      counters: [budget],
      estimate: estimate({ tokens: 5, costMicros: 1_000, llmCalls: 1 }),
      ttlMs: 60_000,
    });
    expect(r).toMatchObject({
      ok: false,
      refused: [{ reason: "WOULD_EXCEED", dimension: "costMicros" }],
    });
    // 2^53 - 1 in Redis; the reply path through ioredis (the local REST server) rounds it.
    expect(r.ok ? 0 : r.refused[0]?.limit).toBeGreaterThanOrEqual(2 ** 53 - 1);
    expect(await fx.direct.hmget(budget.key, "r_tok", "r_llm")).toEqual([null, null]);
  });

  it("never lets HINCRBY overflow half-way through a reservation", async () => {
    const ledger = fx.ledgerOn();
    const first = fx.counter("first", { tokens: 1_000 });
    const second = fx.counter("second", { llmCalls: 1_000 });
    await fx.direct.hset(second.key, "r_cost", "9223372036854775000");
    const r = await ledger.reserve({
      tenantId: T,
      counters: [first, second],
      estimate: estimate({ tokens: 5, costMicros: 1_000 }),
      ttlMs: 60_000,
    });
    expect(r.ok).toBe(false);
    // Nothing of the refused call stays reserved on the counter before the failing one.
    expect(await fx.direct.hget(first.key, "r_tok")).toBeNull();
    expect(await fx.direct.exists(fx.keys.counterReservations(first.key))).toBe(0);
  });
});

describe("the tenant's BudgetSet guard (budgetSetKey)", () => {
  const call = (budgetSetKey?: string) => ({
    tenantId: T,
    counters: [fx.counter("guarded", { tokens: 1_000 })],
    estimate: estimate({ tokens: 400 }),
    ttlMs: 60_000,
    ...(budgetSetKey ? { budgetSetKey } : {}),
  });

  it("refuses as unsynced and writes nothing when the set is missing (a flush lost it)", async () => {
    const r = await fx.ledgerOn().reserve(call(fx.keys.budgetSet(T)));
    expect(r).toEqual({ ok: false, unsynced: true, refused: [], remaining: [] });
    // No counter, reservation set or reservation: the flushed state stays as it was.
    expect(await fx.namespaceKeys()).toEqual([]);
  });

  it("reserves as before once the set is there, and without the key", async () => {
    const ledger = fx.ledgerOn();
    await fx.direct.set(fx.keys.budgetSet(T), JSON.stringify({ version: 1, budgets: [] }));
    const guarded = await ledger.reserve(call(fx.keys.budgetSet(T)));
    expect(guarded).toMatchObject({ ok: true, remaining: [{ remaining: { tokens: 600 } }] });
    const unguarded = await ledger.reserve(call());
    expect(unguarded).toMatchObject({ ok: true, remaining: [{ remaining: { tokens: 200 } }] });
    expect(guarded.ok && guarded.reservationId).toBeTruthy();
    const refused = await ledger.reserve(call(fx.keys.budgetSet(T)));
    expect(refused).toMatchObject({ ok: false, refused: [{ reason: "WOULD_EXCEED" }] });
    expect(refused).not.toHaveProperty("unsynced");
  });

  it("takes only the tenant's own set key", async () => {
    await expect(fx.ledgerOn().reserve(call(fx.keys.budgetSet("other")))).rejects.toMatchObject({
      kind: "Invalid",
      field: "budgetSetKey",
    });
  });
});
