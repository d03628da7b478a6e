import { Code, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { BudgetState } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import { ApprovalStatus } from "../../proto/gen/fulcrum/policy/v1/approval_pb.js";
import { TEST_API_KEY } from "../../test/harness/sdk-client-stubs.js";
import { fakeFulcrum } from "../../test/harness/sdk-management-stubs.js";
import { FulcrumClient } from "./index.js";

// The one-shot reads of the management API: client.getApproval (PolicyService.GetApproval)
// and client.getBudgetStatus (CostService.GetBudgetStatus).

describe("client.getApproval()", () => {
  it("answers one reading: PENDING, then the reviewer's verdict", async () => {
    const fake = fakeFulcrum({
      getApproval: (n) =>
        n === 1
          ? { status: ApprovalStatus.PENDING, expiresAt: { seconds: 1_700_003_600n, nanos: 0 } }
          : {
              status: ApprovalStatus.REJECTED,
              reviewer: "bob",
              reviewNote: "too large",
              decisionId: "dec_1",
              reviewedAt: { seconds: 1_700_000_100n, nanos: 0 },
            },
    });
    const client = fake.client();
    await expect(client.getApproval("apr_1")).resolves.toEqual({
      approvalId: "apr_1",
      status: "PENDING",
      reviewer: "",
      note: "",
      reviewedAt: undefined,
      expiresAt: new Date(1_700_003_600_000),
      decisionId: "",
    });
    await expect(client.getApproval("apr_1")).resolves.toMatchObject({
      status: "REJECTED",
      reviewer: "bob",
      note: "too large",
      decisionId: "dec_1",
      reviewedAt: new Date(1_700_000_100_000),
    });
    // One call per reading: no polling.
    expect(fake.calls).toEqual(["GetApproval", "GetApproval"]);
  });

  it("NotFound resolves NOT_FOUND; transient failures are retried; others throw", async () => {
    const missing = fakeFulcrum({
      getApproval: () => {
        throw new ConnectError("approval apr_9 not found", Code.NotFound);
      },
    });
    await expect(missing.client().getApproval("apr_9")).resolves.toMatchObject({
      approvalId: "apr_9",
      status: "NOT_FOUND",
    });

    const flaky = fakeFulcrum({
      getApproval: (n) => {
        if (n === 1) throw new ConnectError("down", Code.Unavailable);
        return { status: ApprovalStatus.APPROVED };
      },
    });
    await expect(flaky.client().getApproval("apr_1")).resolves.toMatchObject({
      status: "APPROVED",
    });
    expect(flaky.calls).toHaveLength(2);

    const denied = fakeFulcrum({
      getApproval: () => {
        throw new ConnectError("missing approvals.read", Code.PermissionDenied);
      },
    });
    await expect(denied.client().getApproval("apr_1")).rejects.toMatchObject({
      code: "PermissionDenied",
    });
    await expect(denied.client().getApproval("")).rejects.toMatchObject({
      code: "InvalidArgument",
    });
  });

  it("needs managementUrl", async () => {
    const client = new FulcrumClient({
      baseUrl: "http://unused",
      apiKey: TEST_API_KEY,
    });
    await expect(client.getApproval("apr_1")).rejects.toMatchObject({
      code: "FailedPrecondition",
      message: expect.stringMatching(/getApproval\(\) needs the management API/),
    });
  });
});

describe("client.getBudgetStatus()", () => {
  it("maps state, usage, percentages and what is left, execution time included", async () => {
    const fake = fakeFulcrum({
      getBudgetStatus: () => ({
        status: BudgetState.WARNING,
        usage: {
          totalTokens: 850n,
          inputTokens: 600n,
          outputTokens: 250n,
          costUsd: 1.5,
          llmCalls: 4n,
        },
        tokenUsagePercent: 85,
        costUsagePercent: 75,
        remaining: {
          maxTokens: 150n,
          maxCostUsd: 0.5,
          maxExecutionTime: { seconds: 90n, nanos: 250_000_000 },
        },
        nextThreshold: { percent: 100 },
        periodStart: { seconds: 1_700_000_000n, nanos: 0 },
        resetAt: { seconds: 1_700_086_400n, nanos: 0 },
      }),
    });
    const status = await fake.client().getBudgetStatus("bud_1");
    expect(status).toEqual({
      budgetId: "bud_1",
      status: "WARNING",
      used: {
        tokens: 850,
        inputTokens: 600,
        outputTokens: 250,
        costUsd: 1.5,
        llmCalls: 4,
        toolCalls: 0,
      },
      tokenUsagePercent: 85,
      costUsagePercent: 75,
      llmCallsUsagePercent: 0,
      toolCallsUsagePercent: 0,
      remaining: {
        tokens: 150,
        costUsd: 0.5,
        llmCalls: undefined,
        toolCalls: undefined,
        executionMs: 90_250,
      },
      nextThresholdPercent: 100,
      periodStart: new Date(1_700_000_000_000),
      resetAt: new Date(1_700_086_400_000),
    });
    expect(fake.calls).toEqual(["GetBudgetStatus"]);
  });

  it("an unknown budget throws NotFound; an empty id InvalidArgument", async () => {
    const fake = fakeFulcrum({
      getBudgetStatus: (id) => {
        throw new ConnectError(`budget ${id} not found`, Code.NotFound);
      },
    });
    await expect(fake.client().getBudgetStatus("bud_x")).rejects.toMatchObject({
      code: "NotFound",
      message: expect.stringMatching(/budget bud_x not found/),
    });
    await expect(fake.client().getBudgetStatus("")).rejects.toMatchObject({
      code: "InvalidArgument",
    });
    expect(fake.calls).toEqual(["GetBudgetStatus"]);
  });
});
