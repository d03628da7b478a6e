import { describe, expect, it } from "vitest";
import { budgetLedgerFixture, estimate, T } from "../harness/budget-ledger-fixture.js";

// The reserve script's numeric bounds against real Redis: reserved sums never leave the
// range where Lua's doubles are exact and HINCRBY cannot overflow.
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
