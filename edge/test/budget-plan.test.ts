import type { Redis } from "@upstash/redis";
import { describe, expect, it } from "vitest";
import type { BudgetSet, EnvelopeRecord } from "../../core/budget/budget-keys.js";
import {
  type BudgetSubject,
  envelopeRefusal,
  estimateOf,
  selectCounters,
} from "../src/budget/budget-plan.js";
import { BudgetSetSource, BudgetSetUnavailableError } from "../src/budget/budget-set-source.js";
import { budget } from "./budget-tenant.js";

/** The pure parts of the budget step: estimate, counter selection, envelope checks, the cache. */
const subject = (extra: Partial<BudgetSubject> = {}): BudgetSubject => ({
  toolNames: [],
  estimatedTokens: 0,
  estimatedCostUsd: 0,
  ...extra,
});
const set = (budgets: BudgetSet["budgets"], prices: BudgetSet["prices"] = {}): BudgetSet => ({
  version: 1,
  budgets,
  prices,
  fallback: [3, 15],
});

describe("estimateOf", () => {
  it("takes the caller's cost, else tokens at the model's dearer price", () => {
    expect(estimateOf(subject({ estimatedTokens: 100, estimatedCostUsd: 0.25 }), null)).toEqual({
      tokens: 100,
      costMicros: 250_000,
      llmCalls: 0,
      toolCalls: 0,
    });
    // gpt-4o: $2.5 in / $10 out per million → 1000 tokens at $10/M = 10,000 micro-USD.
    expect(estimateOf(subject({ estimatedTokens: 1000, modelId: "gpt-4o" }), null).costMicros).toBe(
      10_000,
    );
    // The tenant's price replaces the default; unknown models use the set's fallback.
    const priced = set([], { "gpt-4o": [1, 2] });
    expect(
      estimateOf(subject({ estimatedTokens: 1000, modelId: "gpt-4o" }), priced).costMicros,
    ).toBe(2_000);
    expect(
      estimateOf(subject({ estimatedTokens: 1000, modelId: "mystery" }), priced).costMicros,
    ).toBe(15_000);
  });

  it("counts one LLM call before an LLM call and one tool call per tool before a tool call", () => {
    expect(estimateOf(subject({ phase: "PRE_LLM_CALL", toolNames: ["a"] }), null)).toMatchObject({
      llmCalls: 1,
      toolCalls: 0,
    });
    expect(
      estimateOf(subject({ phase: "PRE_TOOL_CALL", toolNames: ["a", "b"] }), null),
    ).toMatchObject({ llmCalls: 0, toolCalls: 2 });
    expect(estimateOf(subject({ phase: "POST_LLM_CALL" }), null)).toEqual({
      tokens: 0,
      costMicros: 0,
      llmCalls: 0,
      toolCalls: 0,
    });
  });
});

describe("selectCounters", () => {
  const now = Date.UTC(2026, 10, 24, 12);
  const budgets = set([
    budget("t", { limits: { tokens: 1 } }),
    budget("monthly", { period: "MONTHLY", limits: { tokens: 1 } }),
    budget("wf-a", { scope: "workflow", workflowId: "a", limits: { tokens: 1 } }),
    budget("wf-b", { scope: "workflow", workflowId: "b", limits: { tokens: 1 } }),
    budget("env-root", { scope: "envelope", envelopeId: "root", limits: { tokens: 1 } }),
    budget("env-other", { scope: "envelope", envelopeId: "other", limits: { tokens: 1 } }),
    budget("gov", { scope: "workflow", workflowId: "z", limits: { tokens: 1 } }),
  ]);

  it("picks tenant budgets and the call's workflow's, with their periods", () => {
    const counters = selectCounters(budgets, subject({ workflowId: "a" }), [], now);
    expect(counters.map((c) => c.counterId)).toEqual(["t", "monthly", "wf-a"]);
    const monthly = counters.find((c) => c.counterId === "monthly");
    expect(monthly?.periodStartMs).toBe(Date.UTC(2026, 10, 1));
    expect(monthly?.resetAtMs).toBe(Date.UTC(2026, 11, 1));
    expect(counters[0]).toMatchObject({ periodStartMs: 0, resetAtMs: null });
  });

  it("adds the envelope chain: scoped budgets, governance budgets, own limits of every level", () => {
    const chain = [
      { id: "leaf", record: { limits: { tokens: 10 } } },
      { id: "mid", record: { budgetId: "gov", limits: {} } },
      { id: "root", record: { limits: { costMicros: 5 } } },
      { id: "gone" },
    ];
    const counters = selectCounters(budgets, subject(), chain, now);
    expect(counters.map((c) => c.counterId)).toEqual([
      "t",
      "monthly",
      "env-root",
      "gov",
      "env:leaf",
      "env:root",
    ]);
    expect(counters.find((c) => c.counterId === "env:leaf")).toMatchObject({
      budgetId: "envelope:leaf",
      scope: "envelope",
      limits: { tokens: 10 },
      resetAtMs: null,
    });
  });

  it("lists a budget once however many ways it applies; no set, no budgets", () => {
    const chain = [{ id: "root", record: { budgetId: "env-root", limits: {} } }];
    const ids = selectCounters(budgets, subject(), chain, now).map((c) => c.counterId);
    expect(ids.filter((id) => id === "env-root")).toHaveLength(1);
    expect(selectCounters(null, subject({ workflowId: "a" }), [], now)).toEqual([]);
  });

  it("marks soft budgets", () => {
    const soft = set([budget("soft", { limits: { tokens: 1 }, hardLimit: false })]);
    expect(selectCounters(soft, subject(), [], now)[0]?.hard).toBe(false);
  });
});

describe("envelopeRefusal", () => {
  const envelope: EnvelopeRecord = {
    id: "e1",
    status: "RUNNING",
    workflowId: "",
    ancestors: [],
    limits: {},
    allowedModels: ["gpt-4o"],
    allowedTools: ["search", "fetch"],
    deadlineMs: 2000,
    updatedAtMs: 0,
  };

  it("admits what the envelope allows, before its deadline", () => {
    expect(
      envelopeRefusal(envelope, subject({ modelId: "gpt-4o", toolNames: ["search"] }), 1000),
    ).toBeUndefined();
    expect(
      envelopeRefusal({ ...envelope, allowedModels: [] }, subject({ modelId: "x" }), 1000),
    ).toBe(undefined);
  });

  it("says why it refuses", () => {
    expect(envelopeRefusal({ ...envelope, status: "PAUSED" }, subject(), 1000)).toBe(
      "envelope e1 is PAUSED: only an AUTHORIZED or RUNNING envelope admits calls",
    );
    expect(envelopeRefusal(envelope, subject(), 2000)).toContain("passed its deadline");
    expect(envelopeRefusal(envelope, subject({ modelId: "o3" }), 1000)).toBe(
      "model o3 is not allowed in envelope e1 (allowed: gpt-4o)",
    );
    expect(envelopeRefusal(envelope, subject({ toolNames: ["shell", "rm", "search"] }), 1000)).toBe(
      "tools shell, rm are not allowed in envelope e1 (allowed: search, fetch)",
    );
  });

  it("reads allowed entries as globs, as CreateEnvelope does", () => {
    const globs = { ...envelope, allowedModels: ["gpt-4o*"], allowedTools: ["search_*", "fetch"] };
    const call = subject({ modelId: "gpt-4o-mini", toolNames: ["search_web", "fetch"] });
    expect(envelopeRefusal(globs, call, 1000)).toBeUndefined();
    expect(envelopeRefusal(globs, subject({ toolNames: ["fetch_all"] }), 1000)).toBe(
      "tool fetch_all is not allowed in envelope e1 (allowed: search_*, fetch)",
    );
  });
});

describe("BudgetSetSource", () => {
  function source(answers: (() => unknown)[], clock: { now: number }) {
    let calls = 0;
    const redis = {
      get: async () => {
        calls += 1;
        const answer = answers.shift();
        if (!answer) throw new Error("no more answers");
        return answer();
      },
    } as unknown as Redis;
    const s = new BudgetSetSource({
      redis,
      keyOf: (t) => `set:${t}`,
      refreshMs: 500,
      maxStaleMs: 10_000,
      now: () => clock.now,
    });
    return { s, calls: () => calls };
  }
  const good = JSON.stringify(set([budget("b", { limits: { tokens: 5 } })]));

  it("reads once per refresh, shares concurrent reads, and reads 'no key' as no budgets", async () => {
    const clock = { now: 0 };
    const empty = JSON.stringify(set([]));
    const { s, calls } = source([() => good, () => empty, () => null], clock);
    const [a, b] = await Promise.all([s.get("t"), s.get("t")]);
    expect(a?.budgets[0]?.id).toBe("b");
    expect(b).toBe(a);
    clock.now = 400;
    expect(await s.get("t")).toBe(a);
    expect(calls()).toBe(1);
    clock.now = 600;
    expect((await s.get("t"))?.budgets).toEqual([]);
    // Budgets all deleted: functions publish an empty set, so a missing one after it is none.
    clock.now = 1200;
    expect(await s.get("t")).toBeNull();
    expect(calls()).toBe(3);
  });

  it("a set that vanished while it had budgets is a failed read, not 'no budgets'", async () => {
    // A flush or an eviction: "no budgets" would let calls through against full budgets.
    const clock = { now: 0 };
    const { s } = source([() => good, () => null, () => null], clock);
    const first = await s.get("t");
    clock.now = 1000;
    expect(await s.get("t")).toBe(first);
    clock.now = 10_001;
    await expect(s.get("t")).rejects.toThrow(/missing from Redis/);
  });

  it("keeps the last good set through failures for maxStaleMs, then fails", async () => {
    const clock = { now: 0 };
    const failing = () => {
      throw new Error("connection refused");
    };
    const { s } = source([() => good, failing, () => "{corrupt", failing], clock);
    const first = await s.get("t");
    clock.now = 1000;
    expect(await s.get("t")).toBe(first);
    clock.now = 2000;
    expect(await s.get("t")).toBe(first);
    clock.now = 10_001;
    await expect(s.get("t")).rejects.toBeInstanceOf(BudgetSetUnavailableError);
  });

  it("a tenant last seen without budgets keeps none however long Redis fails", async () => {
    const clock = { now: 0 };
    const failing = () => {
      throw new Error("connection refused");
    };
    const { s } = source([() => null, failing, failing], clock);
    expect(await s.get("t")).toBeNull();
    clock.now = 60_000;
    expect(await s.get("t")).toBeNull();
    clock.now = 3_600_000;
    expect(await s.get("t")).toBeNull();
  });

  it("without a good set, a failure is an error at once", async () => {
    const { s } = source([() => "[1,2]"], { now: 0 });
    await expect(s.get("t")).rejects.toThrow(/budgets could not be read/);
  });
});
