import { describe, expect, it } from "vitest";
import { envelopeCounterId } from "../../core/budget/budget-keys.js";
import type { BudgetLedger, CounterSpec } from "../../core/budget/ledger.js";
import {
  admitted,
  budgetLedgerFixture,
  estimate,
  T,
  used,
} from "../harness/budget-ledger-fixture.js";
import { closedPortUrl, fulcrumFailure, startHungServer } from "../harness/redis-faults.js";

// Concurrency, refusals and bad input of BudgetLedger against real Redis (through the local
// Upstash REST server); expiry, release, settle and restore: budget-ledger-settle.test.ts.
const fx = budgetLedgerFixture();

describe("200 concurrent reservations against one budget", () => {
  it("admits exactly floor(10000 / 73) of 200 × 73 tokens, over four clients", async () => {
    // Two clients batch their calls (auto-pipelining, like the edge), two send one HTTP
    // request per call, so reservations arrive interleaved from many connections.
    const ledgers = [true, true, false, false].map((p) => fx.ledgerOn(fx.client(fx.url, p)));
    const budget = fx.counter("tokens", { tokens: 10_000 });
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        (ledgers[i % 4] as BudgetLedger).reserve({
          tenantId: T,
          counters: [budget],
          estimate: estimate({ tokens: 73 }),
          ttlMs: 60_000,
        }),
      ),
    );
    expect(admitted(results)).toBe(Math.floor(10_000 / 73)); // 136
    const [state] = await fx.ledgerOn().readCounters([budget.key]);
    expect(state?.reserved.tokens).toBe(136 * 73);
    expect(state?.reserved.tokens).toBeLessThanOrEqual(10_000);
    // Every admitted call saw a distinct remaining: the reservations were serialized.
    const remaining = results.flatMap((r) => (r.ok ? [r.remaining[0]?.remaining.tokens] : []));
    expect(new Set(remaining).size).toBe(136);
    expect(Math.min(...(remaining as number[]))).toBe(10_000 - 136 * 73);
    for (const r of results.filter((r) => !r.ok)) {
      expect(r).toMatchObject({
        ok: false,
        refused: [{ key: budget.key, reason: "WOULD_EXCEED", dimension: "tokens", limit: 10_000 }],
      });
    }
    expect(new Set(results.flatMap((r) => (r.ok ? [r.reservationId] : []))).size).toBe(136);
  });

  it("holds a cost limit too (micro-USD), and an LLM-call limit beside it", async () => {
    const ledger = fx.ledgerOn();
    const budget = fx.counter("cost", { costMicros: 1_000_000, llmCalls: 150 });
    const results = await Promise.all(
      Array.from({ length: 200 }, () =>
        ledger.reserve({
          tenantId: T,
          counters: [budget],
          estimate: estimate({ costMicros: 7_300, llmCalls: 1 }),
          ttlMs: 60_000,
        }),
      ),
    );
    expect(admitted(results)).toBe(Math.floor(1_000_000 / 7_300)); // 136 < 150 calls
    const [state] = await ledger.readCounters([budget.key]);
    expect(state?.reserved).toEqual({
      tokens: 0,
      costMicros: 136 * 7_300,
      llmCalls: 136,
      toolCalls: 0,
    });

    // Now the call limit binds first: 150 - 136 = 14 more one-call, zero-cost reservations.
    const more = await Promise.all(
      Array.from({ length: 40 }, () =>
        ledger.reserve({
          tenantId: T,
          counters: [budget],
          estimate: estimate({ llmCalls: 1 }),
          ttlMs: 60_000,
        }),
      ),
    );
    expect(admitted(more)).toBe(14);
    expect(more.find((r) => !r.ok)).toMatchObject({
      refused: [{ dimension: "llmCalls", limit: 150 }],
    });
  });
});

describe("refusals", () => {
  it("an exhausted budget denies even a zero estimate; a live one admits it without reserving", async () => {
    const ledger = fx.ledgerOn();
    const budget = fx.counter("b", { tokens: 1000, inputTokens: 300 });
    const zero = { tenantId: T, counters: [budget], estimate: estimate(), ttlMs: 60_000 };
    const free = await ledger.reserve(zero);
    expect(free).toMatchObject({
      ok: true,
      remaining: [{ remaining: { tokens: 1000, inputTokens: 300 } }],
    });
    expect(free.ok && free.reservationId).toBeFalsy();
    expect(await fx.direct.keys(`${fx.namespace}:*:res:*`)).toEqual([]);

    // Input tokens used up (only the exhaustion check applies to them).
    await ledger.restore([used(budget.key, { u_tok: 400, u_in: 300, u_out: 100 })]);
    expect(await ledger.reserve(zero)).toMatchObject({
      ok: false,
      refused: [{ reason: "EXHAUSTED", dimension: "inputTokens", used: 300, limit: 300 }],
    });
    const other = fx.counter("c", { tokens: 1000 });
    await ledger.restore([used(other.key, { u_tok: 1000 })]);
    expect(await ledger.reserve({ ...zero, counters: [other] })).toMatchObject({
      ok: false,
      refused: [{ reason: "EXHAUSTED", dimension: "tokens", used: 1000, reserved: 0, limit: 1000 }],
    });
    // A limit of 0 allows nothing.
    expect(
      (await ledger.reserve({ ...zero, counters: [fx.counter("z", { toolCalls: 0 })] })).ok,
    ).toBe(false);
  });

  it("a suspended budget denies everything; a soft one reserves but never refuses on limits", async () => {
    const ledger = fx.ledgerOn();
    const suspended = fx.counter("s", {}, { suspended: true });
    const r = await ledger.reserve({
      tenantId: T,
      counters: [suspended],
      estimate: estimate(),
      ttlMs: 1000,
    });
    expect(r).toMatchObject({ ok: false, refused: [{ key: suspended.key, reason: "SUSPENDED" }] });
    const soft = fx.counter("soft", { tokens: 100 }, { hard: false });
    const hard = fx.counter("hard", { tokens: 1000 });
    for (const _ of [1, 2, 3]) {
      const ok = await ledger.reserve({
        tenantId: T,
        counters: [soft, hard],
        estimate: estimate({ tokens: 60 }),
        ttlMs: 60_000,
      });
      expect(ok.ok).toBe(true);
    }
    const states = await ledger.readCounters([soft.key, hard.key]);
    expect(states.map((s) => s.reserved.tokens)).toEqual([180, 180]);
    // The soft counter still reports what is left (nothing).
    const last = await ledger.reserve({
      tenantId: T,
      counters: [soft, hard],
      estimate: estimate({ tokens: 1 }),
      ttlMs: 60_000,
    });
    expect(last.remaining.map((c) => c.remaining.tokens)).toEqual([0, 1000 - 181]);
  });

  it("refuses all counters or none, and names every counter that refused", async () => {
    const ledger = fx.ledgerOn();
    const a = fx.counter("a", { tokens: 100 });
    const b = fx.counter("b", { tokens: 50, costMicros: 10 });
    const r = await ledger.reserve({
      tenantId: T,
      counters: [a, b],
      estimate: estimate({ tokens: 60, costMicros: 11 }),
      ttlMs: 60_000,
    });
    expect(r).toMatchObject({
      ok: false,
      refused: [{ key: b.key, dimension: "tokens", reason: "WOULD_EXCEED" }],
    });
    expect(r.ok ? undefined : r.refused).toHaveLength(1);
    expect(r.remaining.map((c) => c.remaining)).toEqual([
      { tokens: 100 },
      { tokens: 50, costMicros: 10 },
    ]);
    const states = await ledger.readCounters([a.key, b.key]);
    expect(states.map((s) => s.reserved.tokens)).toEqual([0, 0]);
  });
});

describe("parent and child envelope counters", () => {
  it("a child can never exceed its parent, even when its own limit is larger", async () => {
    const ledger = fx.ledgerOn();
    const parent = fx.counter(envelopeCounterId("parent"), { tokens: 1000 }, { expireAtMs: null });
    const childA = fx.counter(envelopeCounterId("a"), { tokens: 600 }, { expireAtMs: null });
    const childB = fx.counter(envelopeCounterId("b"), { tokens: 5000 }, { expireAtMs: null });
    const call = (child: CounterSpec) =>
      ledger.reserve({
        tenantId: T,
        counters: [child, parent],
        estimate: estimate({ tokens: 50 }),
        ttlMs: 60_000,
      });
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) => call(i % 2 === 0 ? childA : childB)),
    );
    const a = results.filter((r, i) => i % 2 === 0 && r.ok).length;
    const b = results.filter((r, i) => i % 2 === 1 && r.ok).length;
    expect(a + b).toBe(20); // the parent's 1000 / 50
    expect(a).toBeLessThanOrEqual(12); // child A's own 600 / 50
    const [sa, sb, sp] = await ledger.readCounters([childA.key, childB.key, parent.key]);
    expect(sp?.reserved.tokens).toBe(1000);
    expect((sa?.reserved.tokens ?? 0) + (sb?.reserved.tokens ?? 0)).toBe(1000);
    // Refusals name the parent once it is full.
    const refused = results.find((r) => !r.ok);
    expect(refused?.ok === false && refused.refused.map((x) => x.key)).toContain(parent.key);
  });
});

describe("bad input and a failing Redis", () => {
  it("refuses bad estimates, ttl and limits as Invalid", async () => {
    const ledger = fx.ledgerOn();
    const base = {
      tenantId: T,
      counters: [fx.counter("b", { tokens: 10 })],
      estimate: estimate(),
      ttlMs: 1000,
    };
    for (const [request, field] of [
      [{ ...base, estimate: estimate({ tokens: -1 }) }, "estimate.tokens"],
      [{ ...base, estimate: estimate({ costMicros: 0.5 }) }, "estimate.costMicros"],
      [{ ...base, ttlMs: 0 }, "ttlMs"],
      [{ ...base, counters: [fx.counter("b", { tokens: -5 })] }, "counters[0].limits.tokens"],
      [{ ...base, tenantId: "" }, "tenant_id"],
      [{ ...base, counters: [fx.counter("b", {}), fx.counter("b", {})] }, "counters"],
    ] as const) {
      const error = await fulcrumFailure(ledger.reserve(request));
      expect(error.kind).toBe("Invalid");
      expect(error.field).toBe(field);
    }
    const error = await fulcrumFailure(ledger.restore([used("k", { u_tok: -3 })]));
    expect(error.field).toBe("used[0].u_tok");
  });

  it("throws Unavailable when Redis is unreachable or does not answer in time", async () => {
    const request = {
      tenantId: T,
      counters: [fx.counter("b", { tokens: 10 })],
      estimate: estimate({ tokens: 1 }),
      ttlMs: 1000,
    };
    const down = await fulcrumFailure(
      fx.ledgerOn(fx.client(await closedPortUrl()), 2000).reserve(request),
    );
    expect(down.kind).toBe("Unavailable");
    expect(down.message).toMatch(/budget ledger \(Redis\) failed while reserving/);
    const hung = await startHungServer();
    try {
      const slow = await fulcrumFailure(fx.ledgerOn(fx.client(hung.url), 200).reserve(request));
      expect(slow.kind).toBe("Unavailable");
      expect(slow.message).toMatch(/within 200 ms/);
    } finally {
      await hung.close();
    }
  });
});
