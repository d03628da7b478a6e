/**
 * Governed executions through the whole stack (issue 6), budgets at the edge: budgets
 * created in the management API hold at the edge under concurrency and across two edge
 * processes, and settled usage counts once. Notifications and approvals:
 * governed-approvals.test.ts; envelopes and the SDK examples: governed-envelopes.test.ts.
 */
import { createWriteStream, mkdirSync } from "node:fs";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { Decision, DecisionReason } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { freePort } from "../../scripts/lib/ports.js";
import { type RunningWorker, startWranglerDev } from "../../scripts/lib/wrangler-dev.js";
import { repoRoot } from "../../scripts/services/service.js";
import { timeUntil } from "../harness/e2e-stack.js";
import {
  check,
  codeOf,
  governedTenant,
  llmCall,
  tokenBudget,
  untilEdgeSeesBudget,
} from "../harness/governed-tenants.js";

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
