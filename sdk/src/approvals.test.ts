import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApprovalStatus } from "../../proto/gen/fulcrum/policy/v1/approval_pb.js";
import { Decision, DecisionReason } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { fakeFulcrum } from "../../test/harness/sdk-management-stubs.js";
import type { Decision as SdkDecision } from "./index.js";

// client.waitForApproval (PolicyService.GetApproval polled on the management API) and the
// REQUIRE_APPROVAL → wait → same call again pattern (guardWithApproval).

const notYet = () => {
  throw new ConnectError("approval apr_1 not found", Code.NotFound);
};

afterEach(() => {
  vi.useRealTimers();
});

describe("client.waitForApproval()", () => {
  it("polls through NotFound (not recorded yet) and PENDING until APPROVED", async () => {
    vi.useFakeTimers();
    const answers = [
      notYet,
      notYet,
      () => ({ status: ApprovalStatus.PENDING }),
      () => ({ status: ApprovalStatus.PENDING }),
      () => ({
        status: ApprovalStatus.APPROVED,
        reviewer: "alice@example.com",
        reviewNote: "ok once",
        decisionId: "dec_1",
        reviewedAt: { seconds: 1_700_000_100n, nanos: 0 },
        expiresAt: { seconds: 1_700_003_600n, nanos: 0 },
      }),
    ];
    const fake = fakeFulcrum({ getApproval: (n) => (answers[n - 1] ?? notYet)() });
    const waiting = fake.client().waitForApproval("apr_1", { pollMs: 1000 });
    await vi.advanceTimersByTimeAsync(4000);
    await expect(waiting).resolves.toEqual({
      approvalId: "apr_1",
      status: "APPROVED",
      reviewer: "alice@example.com",
      note: "ok once",
      decisionId: "dec_1",
      reviewedAt: new Date(1_700_000_100_000),
      expiresAt: new Date(1_700_003_600_000),
    });
    expect(fake.calls).toEqual(Array(5).fill("GetApproval"));
  });

  it("resolves REJECTED and EXPIRED with the reviewer's note", async () => {
    const rejected = fakeFulcrum({
      getApproval: () => ({ status: ApprovalStatus.REJECTED, reviewer: "bob", reviewNote: "no" }),
    });
    await expect(rejected.client().waitForApproval("apr_1")).resolves.toMatchObject({
      status: "REJECTED",
      reviewer: "bob",
      note: "no",
    });
    const expired = fakeFulcrum({ getApproval: () => ({ status: ApprovalStatus.EXPIRED }) });
    await expect(expired.client().waitForApproval("apr_1")).resolves.toMatchObject({
      status: "EXPIRED",
    });
  });

  it("resolves TIMEOUT when nobody decides within timeoutMs", async () => {
    vi.useFakeTimers();
    const fake = fakeFulcrum({ getApproval: () => ({ status: ApprovalStatus.PENDING }) });
    const waiting = fake.client().waitForApproval("apr_1", { timeoutMs: 5000, pollMs: 2000 });
    await vi.advanceTimersByTimeAsync(5000);
    await expect(waiting).resolves.toMatchObject({ approvalId: "apr_1", status: "TIMEOUT" });
    // Polls at 0, 2 s, 4 s; none after the deadline.
    expect(fake.calls).toHaveLength(3);
  });

  it("keeps polling through transient failures", async () => {
    vi.useFakeTimers();
    const fake = fakeFulcrum({
      getApproval: (n) => {
        if (n === 1) throw new ConnectError("down", Code.Unavailable);
        return { status: ApprovalStatus.APPROVED };
      },
    });
    const waiting = fake.client().waitForApproval("apr_1", { pollMs: 500 });
    await vi.advanceTimersByTimeAsync(500);
    await expect(waiting).resolves.toMatchObject({ status: "APPROVED" });
  });

  it("NotFound past the grace period throws NotFound; other errors throw at once", async () => {
    vi.useFakeTimers();
    const fake = fakeFulcrum({ getApproval: notYet });
    const waiting = fake
      .client()
      .waitForApproval("apr_1", { pollMs: 1000, notFoundGraceMs: 3000 })
      .catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(3000);
    const error = await waiting;
    expect(error).toMatchObject({ code: "NotFound" });
    expect((error as Error).message).toMatch(/not found after 3 s.*event processor/);

    const denied = fakeFulcrum({
      getApproval: () => {
        throw new ConnectError("missing approvals.read", Code.PermissionDenied);
      },
    });
    await expect(denied.client().waitForApproval("apr_1")).rejects.toMatchObject({
      code: "PermissionDenied",
    });
    await expect(denied.client().waitForApproval("")).rejects.toMatchObject({
      code: "InvalidArgument",
    });
  });

  it("a signal cancels the wait", async () => {
    vi.useFakeTimers();
    const fake = fakeFulcrum({ getApproval: () => ({ status: ApprovalStatus.PENDING }) });
    const controller = new AbortController();
    const waiting = fake
      .client()
      .waitForApproval("apr_1", { signal: controller.signal })
      .catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    expect(await waiting).toMatchObject({ code: "Canceled" });
  });
});

describe("guardWithApproval()", () => {
  const requireApproval = {
    decisionId: "dec_1",
    result: { decision: Decision.REQUIRE_APPROVAL, approvalId: "apr_1", reasons: ["refunds"] },
  };

  it("REQUIRE_APPROVAL → wait → the same call again, allowed once as APPROVED", async () => {
    const fake = fakeFulcrum({
      evaluate: (_req, n) =>
        n === 1
          ? requireApproval
          : {
              decisionId: "dec_2",
              result: {
                decision: Decision.ALLOW,
                reason: DecisionReason.APPROVED,
                approvalId: "apr_1",
              },
            },
      getApproval: () => ({ status: ApprovalStatus.APPROVED, reviewer: "alice" }),
    });
    const seen: SdkDecision[] = [];
    const env = await fake.client().startEnvelope({ workflowId: "billing" });
    const decision = await env.guardWithApproval("refund", {
      tools: ["stripe_refund"],
      arguments: { charge: "ch_1", amount: 120 },
      onApprovalRequired: (d) => seen.push(d),
      approval: { pollMs: 10 },
    });
    expect(decision).toMatchObject({
      decision: "ALLOW",
      reason: "APPROVED",
      decisionId: "dec_2",
      approval: { status: "APPROVED", reviewer: "alice" },
    });
    expect(seen.map((d) => d.approvalId)).toEqual(["apr_1"]);
    const [first, retry] = fake.evaluations.map((e) => e.context);
    expect(retry?.arguments).toBe('{"charge":"ch_1","amount":120}');
    expect(retry).toEqual(first);
  });

  it("rejected: the first decision, with the outcome, and no second call", async () => {
    const fake = fakeFulcrum({
      evaluate: () => requireApproval,
      getApproval: () => ({ status: ApprovalStatus.REJECTED, reviewNote: "too large" }),
    });
    const decision = await fake.client().evaluateWithApproval({ action: "refund" });
    expect(decision).toMatchObject({
      decision: "REQUIRE_APPROVAL",
      approval: { status: "REJECTED", note: "too large" },
    });
    expect(fake.evaluations).toHaveLength(1);
  });

  it("a decision that needs no approval is returned as is", async () => {
    const fake = fakeFulcrum();
    const decision = await fake.client().evaluateWithApproval({ action: "read" });
    expect(decision).toMatchObject({ decision: "ALLOW", approval: undefined });
    expect(fake.calls).toEqual(["EvaluatePolicy"]);
  });
});
