/**
 * Governed executions through the whole stack (issue 6), notifications and approvals:
 * thresholds reach a signed webhook once, and approvals go from the edge through the
 * event processor to a reviewer and back. Budgets at the edge: governed-budgets.test.ts;
 * envelopes and the SDK examples: governed-envelopes.test.ts.
 */
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyWebhookSignature } from "../../core/notifications/webhook-signature.js";
import { WebhookService } from "../../proto/gen/fulcrum/notification/v1/webhook_pb.js";
import { ApprovalStatus } from "../../proto/gen/fulcrum/policy/v1/approval_pb.js";
import {
  Decision,
  DecisionReason,
  Phase,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { clientOf, functionsUrl, timeUntil } from "../harness/e2e-stack.js";
import {
  type Context,
  check,
  codeOf,
  type GovernedTenant,
  governedTenant,
  tokenBudget,
} from "../harness/governed-tenants.js";
import { startWebhookReceiver, type WebhookReceiver } from "../harness/webhook-receiver.js";

describe("notifications and approvals", () => {
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    receiver = await startWebhookReceiver();
  });
  afterAll(async () => {
    await receiver.close();
  });

  async function webhookOf(t: GovernedTenant, path: string) {
    const hooks = clientOf(WebhookService, functionsUrl(), t.adminKey);
    const res = await hooks.createWebhook({ url: `${receiver.url}${path}` });
    return { hooks, secret: res.signingSecret, webhookId: res.webhook?.webhookId ?? "" };
  }

  const bodies = (path: string) =>
    receiver.on(path).map((r) => ({
      ...r,
      json: JSON.parse(r.body) as {
        type: string;
        data: Record<string, unknown>;
        event_id: string;
      },
    }));

  it("a threshold crossing reaches the tenant's webhook once, signed", async () => {
    const t = await governedTenant("notify");
    const path = `/hooks/${t.tenantId}`;
    const { hooks, secret, webhookId } = await webhookOf(t, path);
    const budgetId = await tokenBudget(t, 1000);
    const usage = (tokens: bigint, key: string) =>
      t.sdkCosts.recordUsage({
        modelId: "gpt-4o-mini",
        inputTokens: tokens,
        idempotencyKey: key,
        workflowId: "support-bot",
      });

    await usage(850n, "u1"); // 85 %: past the 80 % threshold
    await usage(50n, "u2"); // 90 %: no new threshold
    await usage(200n, "u3"); // 110 %: past 100 %
    await timeUntil(async () => bodies(path).length >= 2, 20_000);
    // Anything that would come twice has had time to.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const got = bodies(path);
    expect(got.map((b) => b.json.type).sort()).toEqual(["BUDGET_EXCEEDED", "BUDGET_WARNING"]);
    for (const hook of got) {
      const signature = hook.headers["fulcrum-signature"];
      const verdict = await verifyWebhookSignature(
        secret,
        hook.body,
        Array.isArray(signature) ? signature[0] : signature,
      );
      expect(verdict.ok, JSON.stringify(verdict)).toBe(true);
      expect(JSON.stringify(hook.json.data)).toContain(budgetId);
    }
    const deliveries = await hooks.listWebhookDeliveries({ webhookId });
    expect(deliveries.deliveries).toHaveLength(2);
  }, 60_000);

  it("REQUIRE_APPROVAL → a pending approval (and its webhook) → approved → the same call allowed once", async () => {
    const t = await governedTenant("approve");
    const path = `/hooks/${t.tenantId}`;
    await webhookOf(t, path);
    const call: Context = {
      workflowId: "ops-agent",
      phase: Phase.PRE_TOOL_CALL,
      toolNames: ["delete_user"],
      arguments: JSON.stringify({ user: 7 }),
    };
    const first = await check(t.checkKey, call);
    expect(first.decision).toBe(Decision.REQUIRE_APPROVAL);
    const approvalId = first.approvalId;
    expect(approvalId).not.toBe("");
    // The same call again while pending: the same approval, not a second one.
    expect((await check(t.checkKey, call)).approvalId).toBe(approvalId);

    // The pipeline records it for reviewers and notifies the tenant.
    const reviewer = clientOf(PolicyService, functionsUrl(), t.adminKey);
    await timeUntil(async () => {
      const list = await reviewer.listApprovals({ status: ApprovalStatus.PENDING });
      return list.approvals.some((a) => a.approvalId === approvalId);
    }, 20_000);
    // It names the decision that asked for it, as the decision named itself.
    const { approval } = await reviewer.getApproval({ approvalId });
    expect(approval?.decisionId).toBe(first.decisionId);
    expect(approval?.action).toBe("delete_user");
    await timeUntil(
      async () =>
        bodies(path).some(
          (b) =>
            b.json.type === "APPROVAL_REQUESTED" &&
            JSON.stringify(b.json.data).includes(approvalId),
        ),
      20_000,
    );

    await reviewer.updateApproval({
      approvalId,
      status: ApprovalStatus.APPROVED,
      reviewNote: "user asked to be deleted",
    });
    const approved = await check(t.checkKey, call);
    expect(approved.decision).toBe(Decision.ALLOW);
    expect(approved.reason).toBe(DecisionReason.APPROVED);
    expect(approved.approvalId).toBe(approvalId);
    // Once: the same call again needs a new approval.
    const after = await check(t.checkKey, call);
    expect(after.decision).toBe(Decision.REQUIRE_APPROVAL);
    expect(after.approvalId).not.toBe(approvalId);
    // Other arguments were never approved.
    const other = await check(t.checkKey, { ...call, arguments: JSON.stringify({ user: 8 }) });
    expect(other.decision).toBe(Decision.REQUIRE_APPROVAL);
    // Reviewing an answered approval is refused.
    expect(
      await codeOf(reviewer.updateApproval({ approvalId, status: ApprovalStatus.REJECTED })),
    ).toBe(Code.FailedPrecondition);
  }, 60_000);
});
