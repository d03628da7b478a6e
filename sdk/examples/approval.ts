import { FulcrumClient } from "../src/index.js";

const managementUrl = process.env.FULCRUM_MANAGEMENT_URL ?? "http://127.0.0.1:8080";
const client = new FulcrumClient({
  baseUrl: process.env.FULCRUM_URL ?? "http://127.0.0.1:8787",
  // Approvals are read from the management API.
  managementUrl,
  apiKey: process.env.FULCRUM_API_KEY ?? "",
});

const env = await client.startEnvelope({ workflowId: "billing-agent" });
const refund = { charge: "ch_3Nx", amountUsd: 120 };
let reviewing: Promise<void> | undefined;

// REQUIRE_APPROVAL → wait for a reviewer → the same call again, which the edge allows
// once (the approval is bound to action, tools, arguments and input).
const decision = await env.guardWithApproval("refund_customer", {
  phase: "PRE_TOOL_CALL",
  tools: ["payments_refund"],
  arguments: refund,
  approval: { timeoutMs: 600_000, pollMs: 1000 },
  onApprovalRequired: (pending) => {
    console.log(`approval required: ${pending.approvalId}`);
    reviewing = review(pending.approvalId);
  },
});
await reviewing;
console.log(`approval: ${decision.approval?.status ?? "not needed"}`);
console.log(`refund: ${decision.decision} ${decision.reason}`);

if (!decision.allowed) {
  await env.fail(new Error(`refund not allowed: ${decision.reasons.join("; ")}`));
  process.exit(1);
}
// ... refund here. The approval is spent: the same refund again needs a new one.
const again = await env.guard("refund_customer", {
  phase: "PRE_TOOL_CALL",
  tools: ["payments_refund"],
  arguments: refund,
});
console.log(`same refund again: ${again.decision}`);
await env.complete();

/**
 * The reviewer's side, normally a person in the dashboard. With FULCRUM_REVIEWER_KEY (a
 * manage key of a policy_author or admin) this example approves its own request through
 * PolicyService.UpdateApproval, in Connect's plain JSON over HTTP. The approval is
 * recorded a moment after the decision (by the event processor): NotFound is retried.
 */
async function review(approvalId: string): Promise<void> {
  const key = process.env.FULCRUM_REVIEWER_KEY;
  if (!key) return console.log("waiting for a reviewer to approve it…");
  for (let attempt = 1; attempt <= 40; attempt++) {
    const response = await fetch(
      `${managementUrl}/fulcrum.policy.v1.PolicyService/UpdateApproval`,
      {
        method: "POST",
        headers: { "content-type": "application/json", "x-api-key": key },
        body: JSON.stringify({
          approvalId,
          status: "APPROVAL_STATUS_APPROVED",
          reviewNote: "refund checked",
        }),
      },
    );
    if (response.ok) return console.log(`reviewer approved ${approvalId}`);
    const error = (await response.json()) as { code?: string; message?: string };
    if (error.code !== "not_found")
      throw new Error(`UpdateApproval: ${error.code} ${error.message}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`approval ${approvalId} was never recorded`);
}
