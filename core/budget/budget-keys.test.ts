import { describe, expect, it } from "vitest";
import { FulcrumError } from "../errors/fulcrum-error.js";
import {
  type BudgetDef,
  type BudgetSet,
  budgetKeysIn,
  type EnvelopeRecord,
  envelopeCounterId,
  parseBudgetSet,
  parseEnvelopeRecord,
} from "./budget-keys.js";

const def = (over: Partial<BudgetDef> = {}): BudgetDef => ({
  id: "b1",
  name: "monthly",
  scope: "tenant",
  period: "MONTHLY",
  anchorMs: 1_700_000_000_000,
  limits: { tokens: 1000, costMicros: 5_000_000 },
  thresholds: [80, 100],
  suspended: false,
  ...over,
});
const set = (budgets: unknown[] = [def()], over: Record<string, unknown> = {}) => ({
  version: 1_764_000_000_000,
  budgets,
  prices: { "gpt-4o": [2.5, 10] },
  fallback: [3, 15],
  ...over,
});

/** The message of the FulcrumError `fn` throws (Internal: a stored record is wrong). */
function failure(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(FulcrumError);
    expect((error as FulcrumError).kind).toBe("Internal");
    return (error as FulcrumError).message;
  }
  throw new Error("expected a failure");
}

describe("keys", () => {
  it("share the policy namespace and tag a tenant's ledger keys with one hash slot", () => {
    const keys = budgetKeysIn("ns");
    const counter = keys.counter("t1", "b1", 1_764_000_000_000);
    expect(counter).toBe("ns:budget:{t1}:c:b1:1764000000000");
    expect(keys.counterReservations(counter)).toBe(`${counter}:res`);
    expect(keys.reservation("t1", "r1")).toBe("ns:budget:{t1}:res:r1");
    expect(keys.budgetSet("t1")).toBe("ns:budget:{t1}:set");
    expect(keys.counter("t1", envelopeCounterId("e1"), 0)).toBe("ns:budget:{t1}:c:env:e1:0");
    expect(keys.envelope("t1", "e1")).toBe("ns:envelope:t1:e1");
    expect(
      new Set([
        keys.approvalPending("t", "h"),
        keys.approvalGrant("t", "h"),
        keys.approvalRejected("t", "h"),
      ]).size,
    ).toBe(3);
    expect(budgetKeysIn().namespace).toBe("fulcrum:v1");
  });
});

describe("parseBudgetSet", () => {
  it("accepts a valid set as JSON text or parsed value, keeping only known fields", () => {
    const value = set([
      def(),
      def({
        id: "b2",
        scope: "workflow",
        workflowId: "wf",
        period: "CUSTOM",
        customSeconds: 60,
        hardLimit: false,
      }),
    ]);
    const parsed = parseBudgetSet(JSON.stringify(value));
    expect(parsed).toEqual(value as unknown as BudgetSet);
    expect(parseBudgetSet({ ...value, extra: 1 })).toEqual(value as unknown as BudgetSet);
  });

  it.each([
    ["not JSON", "{", /is not JSON/],
    ["no budgets", { ...set(), budgets: null }, /budgets must be an array/],
    ["bad scope", set([{ ...def(), scope: "org" }]), /budgets\[0\]\.scope must be one of/],
    [
      "workflow scope without id",
      set([def({ scope: "workflow" })]),
      /budgets\[0\]\.workflowId is required/,
    ],
    [
      "workflow id on tenant scope",
      set([def({ workflowId: "wf" })]),
      /workflowId is required for scope workflow and only allowed/,
    ],
    ["envelope scope without id", set([def({ scope: "envelope" })]), /envelopeId/],
    ["CUSTOM without seconds", set([def({ period: "CUSTOM" })]), /customSeconds must be > 0/],
    ["seconds without CUSTOM", set([def({ customSeconds: 60 })]), /customSeconds/],
    [
      "negative limit",
      set([def({ limits: { tokens: -1 } })]),
      /budgets\[0\]\.limits\.tokens must be a non-negative integer/,
    ],
    ["fractional limit", set([def({ limits: { costMicros: 1.5 } })]), /limits\.costMicros/],
    [
      "unknown limit",
      set([{ ...def(), limits: { dollars: 5 } }]),
      /limits\.dollars is not a limit/,
    ],
    ["threshold 0", set([def({ thresholds: [0] })]), /thresholds\[0\] must be in \(0, 1000\]/],
    [
      "suspended missing",
      set([{ ...def(), suspended: undefined }]),
      /suspended must be true or false/,
    ],
    ["duplicate ids", set([def(), def()]), /budgets\[1\]\.id repeats b1/],
    ["bad price", set([def()], { prices: { m: [1] } }), /prices\.m must be/],
    ["bad fallback", set([def()], { fallback: null }), /fallback must be/],
    ["bad version", set([def()], { version: "1" }), /version must be a non-negative integer/],
  ])("refuses %s", (_, value, message) => {
    expect(failure(() => parseBudgetSet(value))).toMatch(message);
  });
});

describe("parseEnvelopeRecord", () => {
  const record = (over: Partial<EnvelopeRecord> = {}): EnvelopeRecord => ({
    id: "e2",
    status: "RUNNING",
    workflowId: "",
    parentId: "e1",
    ancestors: ["e1", "e0"],
    budgetId: "b1",
    limits: { tokens: 500, costMicros: 1000 },
    allowedModels: ["gpt-4o"],
    allowedTools: [],
    deadlineMs: 1_764_000_000_000,
    updatedAtMs: 1_763_000_000_000,
    ...over,
  });

  it("accepts a valid record", () => {
    expect(parseEnvelopeRecord(JSON.stringify(record()))).toEqual(record());
    const root = record({ ancestors: [] });
    delete root.parentId;
    delete root.deadlineMs;
    expect(parseEnvelopeRecord(root)).toEqual(root);
  });

  it.each([
    ["unknown status", { ...record(), status: "DONE" }, /status must be one of/],
    [
      "ancestors not starting with the parent",
      record({ ancestors: ["e0"] }),
      /ancestors must start with parentId/,
    ],
    [
      "ancestors without a parent",
      { ...record(), parentId: undefined },
      /ancestors must start with parentId/,
    ],
    ["bad limit", record({ limits: { llmCalls: -2 } }), /limits\.llmCalls/],
    [
      "input tokens limit",
      { ...record(), limits: { inputTokens: 5 } },
      /limits\.inputTokens is not a limit/,
    ],
    ["models not strings", { ...record(), allowedModels: [1] }, /allowedModels\[0\]/],
    ["no updatedAtMs", { ...record(), updatedAtMs: undefined }, /updatedAtMs/],
    ["null", null, /must be an object/],
  ])("refuses %s", (_, value, message) => {
    expect(failure(() => parseEnvelopeRecord(value))).toMatch(message);
  });
});
