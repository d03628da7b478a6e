import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it, vi } from "vitest";
import { BudgetState } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import {
  Decision,
  DecisionReason,
  Phase,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { jsonFetch, TEST_API_KEY } from "../../test/harness/sdk-client-stubs.js";
import { fakeFulcrum } from "../../test/harness/sdk-management-stubs.js";
import { AlreadySettledError, FulcrumClient, FulcrumError } from "./index.js";

// decision.settle() / client.recordUsage(): what goes to CostService.RecordUsage (the
// decision's reservation id, its context), the local double-settle guard, retries with
// the same request, and the decision's budget / approval fields.

const reserved = {
  decisionId: "dec_r",
  result: {
    decision: Decision.ALLOW,
    reason: DecisionReason.POLICY,
    budget: {
      reservationId: "res_1",
      expiresAt: { seconds: 1_700_000_300n, nanos: 0 },
      reservedTokens: 900n,
      reservedCostUsd: 0.0045,
      budgets: [
        {
          budgetId: "bud_1",
          name: "monthly",
          scope: "tenant",
          status: BudgetState.WARNING,
          tokensRemaining: 10_000n,
          costRemainingUsd: 1.5,
          exceeded: false,
          resetAt: { seconds: 1_701_000_000n, nanos: 0 },
        },
      ],
    },
  },
};

afterEach(() => {
  vi.useRealTimers();
});

describe("Decision.budget and approvalId", () => {
  it("maps the reservation, its budgets and the approval id", async () => {
    const fake = fakeFulcrum({ evaluate: () => reserved });
    const decision = await fake.client().evaluate({ model: "gpt-4o-mini" });
    expect(decision.budget).toEqual({
      reservationId: "res_1",
      expiresAt: new Date(1_700_000_300_000),
      reservedTokens: 900,
      reservedCostUsd: 0.0045,
      failed: false,
      budgets: [
        {
          budgetId: "bud_1",
          name: "monthly",
          scope: "tenant",
          status: "WARNING",
          tokensRemaining: 10_000,
          costRemainingUsd: 1.5,
          llmCallsRemaining: undefined,
          toolCallsRemaining: undefined,
          exceeded: false,
          resetAt: new Date(1_701_000_000_000),
          reason: "",
        },
      ],
    });
    expect(decision.approvalId).toBe("");
    expect(decision.settled).toBe(false);

    const refused = fakeFulcrum({
      evaluate: () => ({
        result: {
          decision: Decision.DENY,
          reason: DecisionReason.BUDGET_EXCEEDED,
          budget: { budgets: [{ budgetId: "bud_1", exceeded: true, reason: "cost 100 %" }] },
        },
      }),
    });
    const denied = await refused.client().evaluate({});
    expect(denied.reason).toBe("BUDGET_EXCEEDED");
    expect(denied.budget?.reservationId).toBe("");
    expect(denied.budget?.budgets[0]).toMatchObject({ exceeded: true, reason: "cost 100 %" });

    const approval = fakeFulcrum({
      evaluate: () => ({
        result: { decision: Decision.REQUIRE_APPROVAL, approvalId: "apr_1" },
      }),
    });
    expect(await approval.client().evaluate({})).toMatchObject({
      decision: "REQUIRE_APPROVAL",
      approvalId: "apr_1",
      budget: undefined,
    });
  });

  it("sends arguments as JSON text (a string as is)", async () => {
    const fake = fakeFulcrum();
    const client = fake.client();
    await client.evaluate({ action: "send_email", arguments: { to: "a@b.c", n: 1 } });
    await client.evaluate({ action: "send_email", arguments: '{"raw":true}' });
    expect(fake.evaluations.map((e) => e.context?.arguments)).toEqual([
      '{"to":"a@b.c","n":1}',
      '{"raw":true}',
    ]);
    await expect(client.evaluate({ arguments: "x".repeat(70_000) })).rejects.toMatchObject({
      code: "InvalidArgument",
    });
  });
});

describe("decision.settle()", () => {
  it("records the usage against the decision's reservation, with its context", async () => {
    const fake = fakeFulcrum({ evaluate: () => reserved });
    const client = fake.client();
    const decision = await client.evaluate({
      workflowId: "wf",
      envelopeId: "env_9",
      model: "gpt-4o-mini",
      phase: "PRE_LLM_CALL",
    });
    const result = await decision.settle({ inputTokens: 700, outputTokens: 120 });
    expect(result).toEqual({ costEventId: "ce_1", costUsd: 0.0123, budgets: [], duplicate: false });
    expect(fake.usages).toHaveLength(1);
    expect(fake.usages[0]).toMatchObject({
      reservationId: "res_1",
      envelopeId: "env_9",
      workflowId: "wf",
      modelId: "gpt-4o-mini",
      inputTokens: 700n,
      outputTokens: 120n,
      // Tokens given: one LLM call unless said otherwise.
      llmCalls: 1,
      toolCalls: 0,
      // The reservation is the idempotency key.
      idempotencyKey: "",
    });
    expect(fake.usages[0]?.costUsd).toBeUndefined();
    expect(decision.settled).toBe(true);
    expect(fake.evaluations[0]?.context?.phase).toBe(Phase.PRE_LLM_CALL);
  });

  it("refuses a second settle of the same decision without calling the server", async () => {
    const fake = fakeFulcrum({ evaluate: () => reserved });
    const decision = await fake.client().evaluate({});
    await decision.settle({ costUsd: 0.01, model: "m" });
    const error = await decision.settle({ costUsd: 0.01 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AlreadySettledError);
    expect(error).toMatchObject({ code: "AlreadyExists", local: true, reservationId: "res_1" });
    expect(fake.usages).toHaveLength(1);
  });

  it("surfaces the server's AlreadyExists (settled elsewhere) as AlreadySettledError", async () => {
    const fake = fakeFulcrum({ evaluate: () => reserved });
    const client = fake.client();
    await client.recordUsage({ reservationId: "res_1", toolCalls: 1 });
    const decision = await client.evaluate({});
    const error = await decision.settle({ toolCalls: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AlreadySettledError);
    expect(error).toMatchObject({ code: "AlreadyExists", local: false, reservationId: "res_1" });
    expect((error as Error).message).toMatch(/already recorded/);
    expect(decision.settled).toBe(true);
  });

  it("retries Unavailable / DeadlineExceeded with the same reservation id", async () => {
    vi.useFakeTimers();
    const fake = fakeFulcrum({
      evaluate: () => reserved,
      recordUsage: (_req, attempt) => {
        if (attempt === 1) throw new ConnectError("functions down", Code.Unavailable);
        if (attempt === 2) throw new ConnectError("slow", Code.DeadlineExceeded);
      },
    });
    const decision = await fake.client().evaluate({});
    const settling = decision.settle({ model: "m", inputTokens: 10 });
    await vi.advanceTimersByTimeAsync(200 + 400);
    await expect(settling).resolves.toMatchObject({ costEventId: "ce_1", duplicate: false });
    expect(fake.usages.map((u) => u.reservationId)).toEqual(["res_1", "res_1", "res_1"]);
  });

  it("an AlreadyExists on a retry is its own earlier attempt: duplicate, not an error", async () => {
    vi.useFakeTimers();
    const fake = fakeFulcrum({
      evaluate: () => reserved,
      afterRecord: (_req, attempt) => {
        if (attempt === 1) throw new ConnectError("answer lost", Code.Unavailable);
      },
    });
    const decision = await fake.client().evaluate({});
    const settling = decision.settle({ model: "m", inputTokens: 5 });
    await vi.advanceTimersByTimeAsync(200);
    await expect(settling).resolves.toEqual({
      costEventId: "",
      costUsd: undefined,
      budgets: [],
      duplicate: true,
    });
    expect(fake.usages.map((u) => u.reservationId)).toEqual(["res_1", "res_1"]);
    expect(decision.settled).toBe(true);
  });

  it("stops after managementRetries and lets the caller settle again", async () => {
    vi.useFakeTimers();
    let down = true;
    const fake = fakeFulcrum({
      evaluate: () => reserved,
      recordUsage: () => {
        if (down) throw new ConnectError("down", Code.Unavailable);
      },
    });
    const decision = await fake.client({ managementRetries: 1 }).evaluate({});
    const settling = decision.settle({ model: "m", outputTokens: 3 }).catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(200);
    expect(await settling).toMatchObject({ code: "Unavailable" });
    expect(fake.usages).toHaveLength(2);
    expect(decision.settled).toBe(false);
    down = false;
    await expect(decision.settle({ model: "m", outputTokens: 3 })).resolves.toMatchObject({
      duplicate: false,
    });
  });

  it("checks the usage before sending anything", async () => {
    const fake = fakeFulcrum({ evaluate: () => reserved });
    const decision = await fake.client().evaluate({});
    for (const usage of [
      {},
      { inputTokens: -1 },
      { outputTokens: 1.5 },
      { costUsd: Number.NaN },
      { llmCalls: 1e9 },
      // No model on the decision's context nor in the usage: tokens cannot be priced.
      { inputTokens: 10 },
    ]) {
      await expect(decision.settle(usage)).rejects.toMatchObject({ code: "InvalidArgument" });
    }
    expect(fake.usages).toHaveLength(0);
    expect(decision.settled).toBe(false);
    await decision.settle({ toolCalls: 2, executionTimeMs: 1500, costUsd: 0 });
    expect(fake.usages[0]).toMatchObject({
      llmCalls: 0,
      toolCalls: 2,
      costUsd: 0,
      executionTime: { seconds: 1n, nanos: 500_000_000 },
    });
  });

  it("without managementUrl: a clear FailedPrecondition, nothing sent", async () => {
    const fake = fakeFulcrum({ evaluate: () => reserved });
    const client = new FulcrumClient({ baseUrl: "x", apiKey: TEST_API_KEY, transport: fake.edge });
    const decision = await client.evaluate({});
    const error = await decision.settle({ model: "m", inputTokens: 1 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FulcrumError);
    expect(error).toMatchObject({ code: "FailedPrecondition" });
    expect((error as Error).message).toMatch(
      /decision\.settle\(\) needs the management API.*managementUrl/,
    );
    expect(decision.settled).toBe(false);
    await expect(client.recordUsage({ inputTokens: 1 })).rejects.toThrow(/managementUrl/);
    await expect(client.waitForApproval("apr_1")).rejects.toThrow(/managementUrl/);
  });
});

describe("client.recordUsage()", () => {
  it("usage without a reservation gets one idempotency key, repeated by its retries", async () => {
    vi.useFakeTimers();
    const fake = fakeFulcrum({
      recordUsage: (_req, attempt) => {
        if (attempt === 1) throw new ConnectError("reset", Code.Unavailable);
      },
    });
    const recording = fake.client().recordUsage({ model: "m", inputTokens: 4, workflowId: "wf" });
    await vi.advanceTimersByTimeAsync(200);
    await recording;
    const keys = fake.usages.map((u) => u.idempotencyKey);
    expect(keys).toHaveLength(2);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).toBe(keys[0]);
    expect(fake.usages[0]).toMatchObject({ reservationId: "", workflowId: "wf", modelId: "m" });
  });

  it("a decision without a reservation settles under its decision id", async () => {
    const fake = fakeFulcrum({
      evaluate: () => ({ decisionId: "dec_7", result: { decision: 1 } }),
    });
    const decision = await fake.client().evaluate({ model: "m" });
    await decision.settle({ inputTokens: 1 });
    expect(fake.usages[0]).toMatchObject({ reservationId: "", idempotencyKey: "decision:dec_7" });
  });

  it("goes to managementUrl with the key, not to the edge", async () => {
    const { fetch, requests } = jsonFetch({ costEventId: "ce_1", costUsd: 0.5 });
    const client = new FulcrumClient({
      baseUrl: "http://edge.test",
      managementUrl: "http://functions.test",
      apiKey: TEST_API_KEY,
      fetch,
      useBinaryFormat: false,
    });
    await expect(client.recordUsage({ costUsd: 0.5, idempotencyKey: "k1" })).resolves.toEqual({
      costEventId: "ce_1",
      costUsd: 0.5,
      budgets: [],
      duplicate: false,
    });
    expect(requests[0]?.url).toBe("http://functions.test/fulcrum.cost.v1.CostService/RecordUsage");
    expect(requests[0]?.headers.get("x-api-key")).toBe(TEST_API_KEY);
    expect(requests[0]?.body).toEqual({ costUsd: 0.5, idempotencyKey: "k1" });
  });
});
