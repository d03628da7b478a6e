import { describe, expect, it } from "vitest";
import { argumentsHash } from "../../core/approvals/arguments-hash.js";
import { Decision, DecisionReason } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { eventually, storedEvents } from "./audit-stream.js";
import { budget, budgetKeys, freshTenant, publishBudgets, testRedis } from "./budget-tenant.js";
import { workerClient } from "./client.js";

/**
 * Approvals at the edge (issue 6): payments.rego answers REQUIRE_APPROVAL for the tool
 * "pay". The grant and rejection keys are written here as functions' UpdateApproval
 * writes them.
 */
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const policies = (key: string) => workerClient(PolicyService, { apiKey: key });
const payment = (args: string) => ({
  action: "pay_invoice",
  toolNames: ["pay"],
  arguments: args,
  workflowId: "billing",
});
const hashOf = (args: string) =>
  argumentsHash({
    action: "pay_invoice",
    toolNames: ["pay"],
    arguments: args,
    workflowId: "billing",
  });

describe("approvals", () => {
  it("creates one pending approval per distinct call, and answers it again for the same call", async () => {
    const { tenantId, key } = await freshTenant("approve");
    const first = await policies(key).checkPolicy({
      context: payment('{"invoice":"inv-1","amount":50}'),
    });
    expect(first.decision).toBe(Decision.REQUIRE_APPROVAL);
    expect(first.reason).toBe(DecisionReason.POLICY);
    expect(first.approvalId).toMatch(UUID_V7);
    const hash = await hashOf('{"invoice":"inv-1","amount":50}');
    expect(await testRedis().get(budgetKeys().approvalPending(tenantId, hash))).toBe(
      first.approvalId,
    );

    // The same arguments, keys in another order: the same approval.
    const again = await policies(key).checkPolicy({
      context: payment('{ "amount": 50, "invoice": "inv-1" }'),
    });
    expect(again.approvalId).toBe(first.approvalId);
    // Other arguments: another approval.
    const other = await policies(key).checkPolicy({
      context: payment('{"invoice":"inv-2","amount":50}'),
    });
    expect(other.approvalId).toMatch(UUID_V7);
    expect(other.approvalId).not.toBe(first.approvalId);

    // The APPROVAL_REQUESTED event reaches the stream (once), beside the decision event.
    const requested = await eventually(async () => {
      const found = (await storedEvents(`fulcrum.events.${tenantId}.approval_requested`)).filter(
        (m) =>
          (m.event as { payload?: { approval_id?: string } }).payload?.approval_id ===
          first.approvalId,
      );
      return found.length > 0 ? found : undefined;
    }, "the APPROVAL_REQUESTED event");
    expect(requested).toHaveLength(1);
    expect(requested[0]?.event).toMatchObject({
      tenantId,
      eventType: "EVENT_TYPE_APPROVAL_REQUESTED",
      payload: {
        approval_id: first.approvalId,
        arguments_hash: hash,
        decision_id: first.decisionId,
        action: "pay_invoice",
        tool_names: ["pay"],
        policy_id: "payments",
        rule_id: "pay",
        workflow_id: "billing",
      },
    });
  });

  it("an approved call is allowed once, then needs a new approval", async () => {
    const { tenantId, key } = await freshTenant("granted");
    const args = '{"invoice":"inv-9"}';
    const first = await policies(key).checkPolicy({ context: payment(args) });
    const hash = await hashOf(args);
    // UpdateApproval APPROVED: grant key, pending key gone.
    await testRedis().set(budgetKeys().approvalGrant(tenantId, hash), first.approvalId);
    await testRedis().del(budgetKeys().approvalPending(tenantId, hash));

    const approved = await policies(key).checkPolicy({ context: payment(args) });
    expect(approved.decision).toBe(Decision.ALLOW);
    expect(approved.allowed).toBe(true);
    expect(approved.reason).toBe(DecisionReason.APPROVED);
    expect(approved.approvalId).toBe(first.approvalId);
    expect(approved.reasons[0]).toContain(`approval ${first.approvalId} allows this call once`);
    expect(await testRedis().get(budgetKeys().approvalGrant(tenantId, hash))).toBeNull();

    const next = await policies(key).checkPolicy({ context: payment(args) });
    expect(next.decision).toBe(Decision.REQUIRE_APPROVAL);
    expect(next.approvalId).toMatch(UUID_V7);
    expect(next.approvalId).not.toBe(first.approvalId);

    // The APPROVED decision's event names the approval it consumed.
    const decision = await eventually(async () => {
      const found = (await storedEvents(`fulcrum.events.${tenantId}.>`)).find(
        (m) => m.event.policyResult?.decisionId === approved.decisionId,
      );
      return found;
    }, "the APPROVED decision's event");
    expect(decision.event).toMatchObject({
      eventType: "EVENT_TYPE_POLICY_EVALUATED",
      decision: { reason: "DECISION_REASON_APPROVED", approvalId: first.approvalId },
    });
  });

  it("a rejected call is denied with the reviewer's note", async () => {
    const { tenantId, key } = await freshTenant("rejected");
    const args = '{"invoice":"inv-13"}';
    const first = await policies(key).checkPolicy({ context: payment(args) });
    const hash = await hashOf(args);
    await testRedis().set(
      budgetKeys().approvalRejected(tenantId, hash),
      JSON.stringify({ approvalId: first.approvalId, reviewer: "alice", note: "wrong account" }),
    );
    await testRedis().del(budgetKeys().approvalPending(tenantId, hash));
    const r = await policies(key).checkPolicy({ context: payment(args) });
    expect(r.decision).toBe(Decision.DENY);
    expect(r.approvalId).toBe(first.approvalId);
    expect(r.reasons[0]).toBe(
      `approval ${first.approvalId} for this call was rejected by alice: wrong account`,
    );
    // EvaluatePolicy of the one policy reports the rejection too, not the policy's verdict.
    const single = await policies(key).evaluatePolicy({
      policyId: "payments",
      context: payment(args),
    });
    expect(single.result?.decision).toBe(Decision.DENY);
    expect(single.result?.approvalId).toBe(first.approvalId);
  });

  it("a call waiting for approval holds no budget", async () => {
    const { tenantId, key } = await freshTenant("approvalbudget");
    await publishBudgets(tenantId, [budget("b-a", { limits: { tokens: 1000 } })]);
    const r = await policies(key).checkPolicy({
      context: { ...payment('{"x":1}'), estimatedTokens: 100 },
    });
    expect(r.decision).toBe(Decision.REQUIRE_APPROVAL);
    expect(r.budget?.reservationId).toBe("");
    await eventually(async () => {
      const held = await testRedis().hget<string>(
        budgetKeys().counter(tenantId, "b-a", 0),
        "r_tok",
      );
      return Number(held ?? 0) === 0 ? true : undefined;
    }, "the reservation released");
  });
});
