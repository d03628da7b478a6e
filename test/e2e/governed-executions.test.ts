/**
 * Governed executions through the whole stack (issue 6): budgets created in the
 * management API hold at the edge under concurrency and across two edge processes,
 * settled usage counts, thresholds reach a signed webhook once, approvals go from the
 * edge through the event processor to a reviewer and back, and a child envelope can
 * never spend past its parent.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { verifyWebhookSignature } from "../../core/notifications/webhook-signature.js";
import { BudgetPeriod } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import { CostService } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { EnvelopeStatus } from "../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";
import { EnvelopeService } from "../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import { WebhookService } from "../../proto/gen/fulcrum/notification/v1/webhook_pb.js";
import { ApprovalStatus } from "../../proto/gen/fulcrum/policy/v1/approval_pb.js";
import {
  ActionType,
  Decision,
  DecisionReason,
  type EvaluationContextSchema,
  Phase,
  RuleType,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  ConditionOperator,
  type Rule,
  RuleSchema,
} from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { freePort } from "../../scripts/lib/ports.js";
import { type RunningWorker, startWranglerDev } from "../../scripts/lib/wrangler-dev.js";
import { repoRoot } from "../../scripts/services/service.js";
import {
  clientOf,
  type E2eTenant,
  edge,
  edgeUrl,
  functionsUrl,
  newTenant,
  timeUntil,
} from "../harness/e2e-stack.js";
import { startWebhookReceiver, type WebhookReceiver } from "../harness/webhook-receiver.js";

type Context = MessageInitShape<typeof EvaluationContextSchema>;

const toolRule = (ruleId: string, prefix: string, action: ActionType, message: string): Rule =>
  create(RuleSchema, {
    ruleId,
    name: ruleId,
    ruleType:
      action === ActionType.REQUIRE_APPROVAL
        ? RuleType.APPROVAL_REQUIRED
        : RuleType.TOOL_RESTRICTION,
    conditions: [
      {
        kind: {
          case: "field",
          value: {
            field: "tool_names",
            operator: ConditionOperator.MATCHES,
            value: { kind: { case: "stringValue", value: `^${prefix}` } },
          },
        },
      },
    ],
    actions: [{ type: action, message }],
  });

/** Shell tools denied, deletes and refunds need a person: the tenants' policy here. */
const RULES: Rule[] = [
  toolRule("no-shell", "shell_", ActionType.DENY, "shell tools are blocked"),
  toolRule("approve-deletes", "delete_", ActionType.REQUIRE_APPROVAL, "deletes need approval"),
  toolRule(
    "approve-refunds",
    "payments_refund",
    ActionType.REQUIRE_APPROVAL,
    "refunds need approval",
  ),
];

interface GovernedTenant extends E2eTenant {
  checkKey: string;
  costs: ReturnType<typeof clientOf<typeof CostService>>;
  /** CostService with the check key: what the SDK settles with. */
  sdkCosts: ReturnType<typeof clientOf<typeof CostService>>;
  envelopes: ReturnType<typeof clientOf<typeof EnvelopeService>>;
}

async function governedTenant(label: string): Promise<GovernedTenant> {
  const t = await newTenant(label);
  await t.activate({ rules: RULES });
  const { key: checkKey } = await t.newKey();
  return {
    ...t,
    checkKey,
    costs: clientOf(CostService, functionsUrl(), t.adminKey),
    sdkCosts: clientOf(CostService, functionsUrl(), checkKey),
    envelopes: clientOf(EnvelopeService, functionsUrl(), checkKey),
  };
}

async function tokenBudget(t: GovernedTenant, maxTokens: number, extra: object = {}) {
  const res = await t.costs.createBudget({
    budget: {
      name: `tokens-${randomBytes(3).toString("hex")}`,
      period: BudgetPeriod.DAILY,
      limits: { maxTokens: BigInt(maxTokens) },
      ...extra,
    },
  });
  return res.budget?.budgetId ?? "";
}

const check = (key: string, context: Context, baseUrl?: string) =>
  (baseUrl ? clientOf(PolicyService, baseUrl, key) : edge(key)).checkPolicy({ context });

const llmCall = (estimatedTokens: number, extra: Context = {}): Context => ({
  workflowId: "support-bot",
  phase: Phase.PRE_LLM_CALL,
  modelId: "gpt-4o-mini",
  estimatedTokens,
  ...extra,
});

/** Waits until the edge sees the tenant's budget (it caches budget sets for 500 ms). */
async function untilEdgeSeesBudget(t: GovernedTenant, budgetId: string, baseUrl?: string) {
  await timeUntil(async () => {
    const res = await check(t.checkKey, { workflowId: "probe" }, baseUrl);
    return res.budget?.budgets.some((b) => b.budgetId === budgetId) ?? false;
  }, 10_000);
}

async function codeOf(call: Promise<unknown>): Promise<Code | undefined> {
  try {
    await call;
    return undefined;
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

describe("budgets at the edge", () => {
  it("admits exactly what fits of concurrent reservations, counts settled usage once, denies at 100 % until raised", async () => {
    const t = await governedTenant("budget");
    const budgetId = await tokenBudget(t, 1000);
    await untilEdgeSeesBudget(t, budgetId);

    const answers = await Promise.all(
      Array.from({ length: 10 }, () => check(t.checkKey, llmCall(300))),
    );
    const admitted = answers.filter((a) => a.decision === Decision.ALLOW);
    expect(admitted).toHaveLength(3);
    for (const a of admitted) expect(a.budget?.reservationId).not.toBe("");
    const denied = answers.filter((a) => a.decision === Decision.DENY);
    expect(denied).toHaveLength(7);
    for (const d of denied) {
      expect(d.reason).toBe(DecisionReason.BUDGET_EXCEEDED);
      expect(d.budget?.budgets.find((b) => b.budgetId === budgetId)?.exceeded).toBe(true);
    }

    // Settle one with what it used (with the SDK's check key): 250 counted, its 300 freed.
    const [first, second] = admitted;
    const settled = await t.sdkCosts.recordUsage({
      reservationId: first?.budget?.reservationId ?? "",
      modelId: "gpt-4o-mini",
      inputTokens: 200n,
      outputTokens: 50n,
      llmCalls: 1,
    });
    expect(settled.costUsd).toBeGreaterThan(0);
    expect(settled.budgets.find((b) => b.budgetId === budgetId)?.usage?.totalTokens).toBe(250n);
    // Settling it again counts nothing.
    expect(
      await codeOf(
        t.sdkCosts.recordUsage({
          reservationId: first?.budget?.reservationId ?? "",
          modelId: "gpt-4o-mini",
          inputTokens: 200n,
          outputTokens: 50n,
        }),
      ),
    ).toBe(Code.AlreadyExists);
    const status = await t.costs.getBudgetStatus({ budgetId });
    expect(status.status?.usage?.totalTokens).toBe(250n);

    // 1000 − 250 used − 600 still reserved = 150 left.
    expect((await check(t.checkKey, llmCall(200))).decision).toBe(Decision.DENY);
    const fits = await check(t.checkKey, llmCall(100));
    expect(fits.decision).toBe(Decision.ALLOW);

    // Usage past the limit: every call is denied, even one that reserves nothing.
    await t.sdkCosts.recordUsage({
      reservationId: second?.budget?.reservationId ?? "",
      modelId: "gpt-4o-mini",
      inputTokens: 900n,
      outputTokens: 0n,
    });
    const exhausted = await check(t.checkKey, { workflowId: "support-bot" });
    expect(exhausted.decision).toBe(Decision.DENY);
    expect(exhausted.reason).toBe(DecisionReason.BUDGET_EXCEEDED);

    // Raising the limit lets calls through again.
    const { budget } = await t.costs.getBudget({ budgetId });
    if (!budget?.limits) throw new Error("no budget");
    budget.limits.maxTokens = 10_000n;
    await t.costs.updateBudget({ budget, updateMask: { paths: ["limits"] } });
    await timeUntil(
      async () => (await check(t.checkKey, llmCall(100))).decision === Decision.ALLOW,
      10_000,
    );
  }, 60_000);

  describe("two edge processes against the same Redis", () => {
    let second: RunningWorker | undefined;
    beforeAll(async () => {
      const logDir = join(repoRoot, ".tmp", "e2e-logs");
      mkdirSync(logDir, { recursive: true });
      second = await startWranglerDev(await freePort(), {
        envFile: inject("edgeEnvFile"),
        logFile: createWriteStream(join(logDir, "wrangler-second.log")),
      });
    }, 120_000);
    afterAll(async () => {
      await second?.stop();
    });

    it("share one budget: the limit is global, not per process", async () => {
      const t = await governedTenant("two-edges");
      const budgetId = await tokenBudget(t, 1000);
      const other = second?.url ?? "";
      await untilEdgeSeesBudget(t, budgetId);
      await untilEdgeSeesBudget(t, budgetId, other);

      const answers = await Promise.all(
        Array.from({ length: 24 }, (_, i) =>
          check(t.checkKey, llmCall(100), i % 2 === 0 ? undefined : other),
        ),
      );
      const admitted = answers.filter((a) => a.decision === Decision.ALLOW);
      // 1000 / 100: ten, however the two processes interleave.
      expect(admitted).toHaveLength(10);
      // Every answer, from either process, counted against the same budget.
      for (const a of answers) {
        expect(a.budget?.budgets.some((b) => b.budgetId === budgetId)).toBe(true);
      }
    }, 60_000);
  });
});

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
