/**
 * Governed executions through the whole stack (issue 6), envelopes: a child envelope
 * can never spend past its parent; and the SDK README's examples run against the stack.
 * Budgets at the edge: governed-budgets.test.ts; notifications and approvals:
 * governed-approvals.test.ts.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { BudgetPeriod } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import { EnvelopeStatus } from "../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";
import { Decision, DecisionReason } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { repoRoot } from "../../scripts/services/service.js";
import { edgeUrl, functionsUrl } from "../harness/e2e-stack.js";
import {
  check,
  codeOf,
  type GovernedTenant,
  governedTenant,
  llmCall,
  tokenBudget,
  untilEdgeSeesBudget,
} from "../harness/governed-tenants.js";

describe("envelopes", () => {
  it("a child envelope draws on its parent and can never exceed it", async () => {
    const t = await governedTenant("envelopes");
    const parent = await t.envelopes.createEnvelope({
      workflowId: "research",
      governance: { tokenBudget: 1000n },
    });
    const parentId = parent.envelope?.envelopeId ?? "";
    expect(parent.envelope?.status).toBe(EnvelopeStatus.AUTHORIZED);
    await t.envelopes.updateEnvelopeStatus({
      envelopeId: parentId,
      status: EnvelopeStatus.RUNNING,
    });
    // A child asking for more than its parent has is refused.
    expect(
      await codeOf(
        t.envelopes.createEnvelope({
          workflowId: "research",
          parentEnvelopeId: parentId,
          governance: { tokenBudget: 2000n },
        }),
      ),
    ).toBe(Code.FailedPrecondition);
    const child = await t.envelopes.createEnvelope({
      workflowId: "research",
      parentEnvelopeId: parentId,
      governance: { tokenBudget: 600n },
    });
    const childId = child.envelope?.envelopeId ?? "";
    await t.envelopes.updateEnvelopeStatus({ envelopeId: childId, status: EnvelopeStatus.RUNNING });

    const inChild = (tokens: number) => check(t.checkKey, llmCall(tokens, { envelopeId: childId }));
    const inParent = (tokens: number) =>
      check(t.checkKey, llmCall(tokens, { envelopeId: parentId }));
    expect((await inChild(400)).decision).toBe(Decision.ALLOW);
    // The child's own 600: 400 + 400 does not fit.
    const overChild = await inChild(400);
    expect(overChild.decision).toBe(Decision.DENY);
    expect(overChild.reason).toBe(DecisionReason.BUDGET_EXCEEDED);
    // The parent's 1000 includes the child's 400.
    expect((await inParent(700)).decision).toBe(Decision.DENY);
    expect((await inParent(600)).decision).toBe(Decision.ALLOW);
    // Now the parent is full: the child is denied although its own limit has room.
    expect((await inChild(100)).decision).toBe(Decision.DENY);

    // A finished envelope admits nothing more.
    await t.envelopes.updateEnvelopeStatus({
      envelopeId: childId,
      status: EnvelopeStatus.COMPLETED,
    });
    const done = await inChild(0);
    expect(done.decision).toBe(Decision.DENY);
    expect(done.reason).toBe(DecisionReason.ENVELOPE);
    // And an invalid transition is refused.
    expect(
      await codeOf(
        t.envelopes.updateEnvelopeStatus({ envelopeId: childId, status: EnvelopeStatus.RUNNING }),
      ),
    ).toBe(Code.FailedPrecondition);

    // Ending the parent ends a child still running: its calls are refused too.
    const sibling = await t.envelopes.createEnvelope({
      workflowId: "research",
      parentEnvelopeId: parentId,
    });
    const siblingId = sibling.envelope?.envelopeId ?? "";
    await t.envelopes.updateEnvelopeStatus({
      envelopeId: siblingId,
      status: EnvelopeStatus.RUNNING,
    });
    await t.envelopes.updateEnvelopeStatus({
      envelopeId: parentId,
      status: EnvelopeStatus.TERMINATED,
    });
    const orphan = await check(t.checkKey, llmCall(0, { envelopeId: siblingId }));
    expect([orphan.decision, orphan.reason]).toEqual([Decision.DENY, DecisionReason.ENVELOPE]);
  }, 60_000);
});

describe("the SDK README's examples run", () => {
  const run = promisify(execFile);
  async function example(name: string, t: GovernedTenant): Promise<string> {
    const { stdout } = await run(
      join(repoRoot, "node_modules", ".bin", "tsx"),
      [join(repoRoot, "sdk", "examples", name)],
      {
        cwd: repoRoot,
        timeout: 60_000,
        env: {
          ...process.env,
          FULCRUM_URL: edgeUrl(),
          FULCRUM_MANAGEMENT_URL: functionsUrl(),
          FULCRUM_API_KEY: t.checkKey,
          FULCRUM_REVIEWER_KEY: t.adminKey,
        },
      },
    );
    return stdout;
  }

  it("settle.ts: a reservation, settled once", async () => {
    const t = await governedTenant("ex-settle");
    const budgetId = await tokenBudget(t, 100_000, { period: BudgetPeriod.MONTHLY });
    await untilEdgeSeesBudget(t, budgetId);
    const out = await example("settle.ts", t);
    expect(out).toMatch(/decision: ALLOW .*reservation [0-9a-f-]{36}/);
    expect(out).toMatch(/settled: cost event/);
    expect(out).toMatch(/second settle: AlreadyExists/);
  }, 90_000);

  it("envelope.ts: parent and child through their lifecycle", async () => {
    const t = await governedTenant("ex-envelope");
    const out = await example("envelope.ts", t);
    expect(out).toMatch(/COMPLETED/);
    expect(out).toMatch(/FAILED/);
  }, 90_000);

  it("approval.ts: approval required, approved, allowed once", async () => {
    const t = await governedTenant("ex-approval");
    const out = await example("approval.ts", t);
    expect(out).toMatch(/approval required: [0-9a-f-]{36}/);
    expect(out).toMatch(/refund: ALLOW APPROVED/);
  }, 90_000);
});
