import { argumentsHash } from "../../../core/approvals/arguments-hash.js";
import type { ActionOutput, DecisionOutput } from "../../../core/policy/tenant-config.js";
import type { Event } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { EvaluationContext } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { approvalRequestedEvent } from "./approval-event.js";
import type { ApprovalGate } from "./approval-gate.js";

export const APPROVALS_METRIC = "fulcrum_edge_approvals_total";

export interface ApprovalInput {
  gate: ApprovalGate;
  tenantId: string;
  apiKeyId: string;
  decisionId: string;
  context: EvaluationContext | undefined;
  output: DecisionOutput;
  nowMs: number;
}

/** What the approval step turned a REQUIRE_APPROVAL into. */
export type ApprovalOutcome =
  | {
      kind: "granted" | "rejected" | "pending" | "created";
      output: DecisionOutput;
      approvalId: string;
      /** The APPROVAL_REQUESTED event of a new approval. */
      event?: Event;
    }
  | { kind: "failed"; message: string };

/**
 * The approval step of a REQUIRE_APPROVAL decision (issue 6): the call's arguments
 * hash, one script (approval-gate.ts), and the verdict it leads to — an approved
 * retry of the same call is ALLOW (once), a rejected one DENY with the reviewer's
 * note, otherwise REQUIRE_APPROVAL naming the approval to wait for. Never throws:
 * a Redis failure is `failed` (the decision fails closed).
 */
export async function applyApproval(input: ApprovalInput): Promise<ApprovalOutcome> {
  const ctx = input.context;
  const hash = await argumentsHash({
    action: ctx?.action,
    toolNames: ctx?.toolNames,
    arguments: ctx?.arguments,
    inputText: ctx?.inputText,
    workflowId: ctx?.workflowId,
  });
  let step: Awaited<ReturnType<ApprovalGate["step"]>>;
  try {
    step = await input.gate.step(input.tenantId, hash);
  } catch (error) {
    return {
      kind: "failed",
      message: `approvals could not be checked (${error instanceof Error ? error.message : String(error)}); the call is denied`,
    };
  }
  const { output } = input;
  switch (step.kind) {
    case "granted": {
      const reason = `approved: approval ${step.approvalId} allows this call once`;
      return {
        kind: "granted",
        approvalId: step.approvalId,
        output: {
          ...output,
          decision: "ALLOW",
          would_decide: "ALLOW",
          reasons: [reason, ...output.reasons],
          // The policies' findings stay in matched rules; the waiting instruction goes.
          actions: output.actions.filter((a) => a.type !== "REQUIRE_APPROVAL"),
        },
      };
    }
    case "rejected": {
      const by = step.reviewer ? ` by ${step.reviewer}` : "";
      const note = step.note ? `: ${step.note}` : "";
      const reason = `approval ${step.approvalId} for this call was rejected${by}${note}`;
      const deny: ActionOutput = {
        type: "DENY",
        message: reason,
        severity: "HIGH",
        terminal: true,
      };
      return {
        kind: "rejected",
        approvalId: step.approvalId,
        output: {
          ...output,
          decision: "DENY",
          would_decide: "DENY",
          reasons: [reason, ...output.reasons],
          actions: [deny, ...output.actions.filter((a) => a.type !== "REQUIRE_APPROVAL")],
        },
      };
    }
    case "pending":
      return { kind: "pending", approvalId: step.approvalId, output };
    case "created": {
      const rule = output.matched_rules.find((r) => r.action === "REQUIRE_APPROVAL");
      const event = approvalRequestedEvent({
        approvalId: step.approvalId,
        tenantId: input.tenantId,
        argumentsHash: hash,
        decisionId: input.decisionId,
        requestedBy: input.apiKeyId,
        action: ctx?.action ?? "",
        toolNames: ctx?.toolNames ?? [],
        reasons: output.reasons,
        policyIds: output.results.map((r) => r.policy_id),
        policyId: rule?.policy_id ?? "",
        ruleId: rule?.rule_id ?? "",
        workflowId: ctx?.workflowId ?? "",
        envelopeId: ctx?.envelopeId ?? "",
        requestedAtMs: input.nowMs,
        expiresAtMs: step.expiresAtMs,
      });
      return { kind: "created", approvalId: step.approvalId, output, event };
    }
  }
}
