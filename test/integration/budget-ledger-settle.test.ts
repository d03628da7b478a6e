import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import { envelopeCounterId } from "../../core/budget/budget-keys.js";
import {
  budgetLedgerFixture,
  estimate,
  HOUR,
  NOW,
  T,
  used,
} from "../harness/budget-ledger-fixture.js";
import { fulcrumFailure } from "../harness/redis-faults.js";

// BudgetLedger's reservation lifecycle against real Redis: expiry purged inside reserve,
// release, idempotent settle (max semantics) and restore after losing every key.
const fx = budgetLedgerFixture();

describe("expiry, release and settle", () => {
  it("purges expired reservations inside reserve and frees their amounts", async () => {
    const ledger = fx.ledgerOn();
    const budget = fx.counter("b", { tokens: 100 }, { expireAtMs: null });
    const reserve = (nowMs: number, tokens: number) =>
      ledger.reserve({
        tenantId: T,
        counters: [budget],
        estimate: estimate({ tokens }),
        ttlMs: 1000,
        nowMs,
      });
    expect((await reserve(NOW, 70)).ok).toBe(true);
    expect((await reserve(NOW + 500, 40)).ok).toBe(false); // 70 still held
    expect((await reserve(NOW + 999, 30)).ok).toBe(true); // fits beside it: 100
    const after = await reserve(NOW + 1000, 40); // the first expired at NOW + 1000
    expect(after).toMatchObject({
      ok: true,
      remaining: [{ remaining: { tokens: 100 - 30 - 40 } }],
    });
    expect(await fx.direct.zcard(fx.keys.counterReservations(budget.key))).toBe(2);
    const [state] = await ledger.readCounters([budget.key], NOW + 1000);
    expect(state?.reserved.tokens).toBe(70);
    // Read-only view at a later time leaves out what has expired by then (not purged yet).
    const [later] = await ledger.readCounters([budget.key], NOW + 1999);
    expect(later?.reserved.tokens).toBe(40);
    expect(await fx.direct.hget(budget.key, "r_tok")).toBe("70");
  });

  it("release gives a reservation back once", async () => {
    const ledger = fx.ledgerOn();
    const a = fx.counter("a", { tokens: 100 });
    const b = fx.counter("b", { costMicros: 1000 });
    const r = await ledger.reserve({
      tenantId: T,
      counters: [a, b],
      estimate: estimate({ tokens: 80, costMicros: 900 }),
      ttlMs: 60_000,
    });
    if (!r.ok || !r.reservationId) throw new Error("expected a reservation");
    expect(await fx.direct.ttl(fx.keys.reservation(T, r.reservationId))).toBeGreaterThan(3600);
    expect(await ledger.release(T, r.reservationId)).toBe(true);
    expect(await ledger.release(T, r.reservationId)).toBe(false);
    const states = await ledger.readCounters([a.key, b.key]);
    expect(states.map((s) => s.reserved)).toEqual([
      { tokens: 0, costMicros: 0, llmCalls: 0, toolCalls: 0 },
      { tokens: 0, costMicros: 0, llmCalls: 0, toolCalls: 0 },
    ]);
    expect(await fx.direct.exists(fx.keys.reservation(T, r.reservationId))).toBe(0);
    expect(await ledger.release(T, randomUUID())).toBe(false);
    const bad = await fulcrumFailure(ledger.release(T, "x:y"));
    expect(bad.kind).toBe("Invalid");
  });

  it("settle is idempotent: twice counts once, a lower value never lowers a counter", async () => {
    const ledger = fx.ledgerOn();
    const budget = fx.counter("b", { tokens: 1000, costMicros: 100_000 });
    const r = await ledger.reserve({
      tenantId: T,
      counters: [budget],
      estimate: estimate({ tokens: 500, costMicros: 5000 }),
      ttlMs: 60_000,
    });
    if (!r.ok || !r.reservationId) throw new Error("expected a reservation");
    const values = used(budget.key, {
      u_tok: 420,
      u_in: 300,
      u_out: 120,
      u_cost: 3150,
      u_llm: 1,
      expireAtMs: NOW + 2 * HOUR,
    });
    const first = await ledger.settle({
      tenantId: T,
      reservationId: r.reservationId,
      used: [values],
    });
    expect(first).toEqual({
      released: true,
      used: [
        {
          tokens: 420,
          inputTokens: 300,
          outputTokens: 120,
          costMicros: 3150,
          llmCalls: 1,
          toolCalls: 0,
          executionMs: 0,
        },
      ],
    });
    const again = await ledger.settle({
      tenantId: T,
      reservationId: r.reservationId,
      used: [values],
    });
    expect(again.released).toBe(false);
    expect(again.used).toEqual(first.used);
    // A stale (lower) absolute value from a racing reconciliation changes nothing.
    const stale = await ledger.restore([used(budget.key, { u_tok: 10, u_cost: 3200 })]);
    expect(stale[0]).toMatchObject({ tokens: 420, costMicros: 3200 });
    const [state] = await ledger.readCounters([budget.key]);
    expect(state).toMatchObject({
      used: { tokens: 420, costMicros: 3200 },
      reserved: { tokens: 0, costMicros: 0 },
    });
    expect(await fx.direct.pttl(budget.key)).toBeGreaterThan(HOUR);
    // Settling an expired-and-purged reservation releases nothing twice.
    const short = await ledger.reserve({
      tenantId: T,
      counters: [budget],
      estimate: estimate({ tokens: 100 }),
      ttlMs: 10,
      nowMs: NOW,
    });
    if (!short.ok || !short.reservationId) throw new Error("expected a reservation");
    await ledger.reserve({
      tenantId: T,
      counters: [budget],
      estimate: estimate({ tokens: 1 }),
      ttlMs: 60_000,
      nowMs: NOW + 20,
    });
    const late = await ledger.settle({
      tenantId: T,
      reservationId: short.reservationId,
      used: [used(budget.key, { u_tok: 520 })],
    });
    expect(late.released).toBe(true); // the hash was still there; its counter entry was purged
    const [after] = await ledger.readCounters([budget.key]);
    expect(after?.reserved.tokens).toBe(1);
    expect(after?.used.tokens).toBe(520);
  });

  it("restore after deleting every key gives the same remaining", async () => {
    const ledger = fx.ledgerOn();
    const budget = fx.counter("b", { tokens: 10_000, costMicros: 50_000, llmCalls: 100 });
    const env = fx.counter(envelopeCounterId("e1"), { tokens: 5_000 }, { expireAtMs: null });
    // Some calls reserved and settled; PostgreSQL's running totals are what settle sends.
    let total = { u_tok: 0, u_cost: 0, u_llm: 0 };
    for (const tokens of [100, 250, 731]) {
      const r = await ledger.reserve({
        tenantId: T,
        counters: [budget, env],
        estimate: estimate({ tokens, costMicros: tokens * 3, llmCalls: 1 }),
        ttlMs: 60_000,
      });
      if (!r.ok || !r.reservationId) throw new Error("expected a reservation");
      total = {
        u_tok: total.u_tok + tokens,
        u_cost: total.u_cost + tokens * 3,
        u_llm: total.u_llm + 1,
      };
      await ledger.settle({
        tenantId: T,
        reservationId: r.reservationId,
        used: [used(budget.key, total), used(env.key, total)],
      });
    }
    const probe = { tenantId: T, counters: [budget, env], estimate: estimate(), ttlMs: 1000 };
    const before = await ledger.reserve(probe);
    expect(before.remaining.map((c) => c.remaining)).toEqual([
      { tokens: 10_000 - 1081, costMicros: 50_000 - 3243, llmCalls: 97 },
      { tokens: 5_000 - 1081 },
    ]);

    const all = await fx.namespaceKeys();
    expect(all.length).toBeGreaterThan(0);
    await fx.direct.del(...all);
    expect((await ledger.reserve(probe)).remaining[0]?.remaining.tokens).toBe(10_000); // forgotten

    await ledger.restore([used(budget.key, total), used(env.key, total)]);
    const after = await ledger.reserve(probe);
    expect(after.remaining).toEqual(before.remaining);
  });

  it("execution time is never reserved, only checked: used up, even a zero estimate is refused", async () => {
    const ledger = fx.ledgerOn();
    const budget = fx.counter("x", { tokens: 1000, executionMs: 60_000 });
    const call = { tenantId: T, counters: [budget], ttlMs: 60_000 };
    const r = await ledger.reserve({ ...call, estimate: estimate({ tokens: 100 }) });
    expect(r).toMatchObject({ ok: true, remaining: [{ remaining: { executionMs: 60_000 } }] });
    if (!r.ok || !r.reservationId) throw new Error("expected a reservation");
    const settled = await ledger.settle({
      tenantId: T,
      reservationId: r.reservationId,
      used: [used(budget.key, { u_tok: 100, u_exec: 59_999 })],
    });
    expect(settled.used[0]?.executionMs).toBe(59_999);
    const zero = { ...call, estimate: estimate() };
    expect(await ledger.reserve(zero)).toMatchObject({
      ok: true,
      remaining: [{ remaining: { tokens: 900, executionMs: 1 } }],
    });
    // The next settle reaches the limit: every later call is refused, whatever it estimates.
    await ledger.restore([used(budget.key, { u_tok: 100, u_exec: 60_000 })]);
    expect(await ledger.reserve(zero)).toMatchObject({
      ok: false,
      refused: [{ reason: "EXHAUSTED", dimension: "executionMs", used: 60_000, limit: 60_000 }],
    });
    await ledger.restore([used(budget.key, { u_exec: 10 })]); // max-set: never lowered
    const [state] = await ledger.readCounters([budget.key]);
    expect(state?.used.executionMs).toBe(60_000);
    expect(await fx.direct.hget(budget.key, "u_exec")).toBe("60000");
  });
});
