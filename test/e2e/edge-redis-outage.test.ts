import { create } from "@bufbuild/protobuf";
import { Redis as IORedis } from "ioredis";
import { afterAll, describe, expect, inject, it } from "vitest";
import {
  ActionType,
  Decision,
  DecisionReason,
  FailureMode,
  RuleType,
} from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { type Rule, RuleSchema } from "../../proto/gen/fulcrum/policy/v1/policy_pb.js";
import { edge, edgeUrl, newTenant, timeUntil } from "../harness/e2e-stack.js";
import { toolRule } from "../harness/policy-fixtures.js";

/**
 * Redis stopped mid-test (SIGSTOP: it hangs, as a partitioned or overloaded Redis
 * does) and resumed: each tenant's configured failure mode decides meanwhile, the
 * decision says so and /metrics counts it; decisions recover when Redis returns.
 * The e2e tier runs its own Redis, so stopping it touches nothing else.
 */

function limited(failureMode: "FAIL_OPEN" | "FAIL_CLOSED"): Rule {
  return create(RuleSchema, {
    ruleId: "limit",
    name: "limit",
    ruleType: RuleType.RATE_LIMIT,
    actions: [
      {
        type: ActionType.THROTTLE,
        parameters: { requests_per_minute: "1000", failure_mode: failureMode },
      },
    ],
  });
}

async function redisPid(): Promise<number> {
  const client = new IORedis(inject("e2eRedisUrl"), { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const info = await client.info("server");
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    if (!Number.isInteger(pid)) throw new Error("no process_id in INFO server");
    return pid;
  } finally {
    client.disconnect();
  }
}

async function failureModeCount(mode: string): Promise<number> {
  const text = await (await fetch(`${edgeUrl()}/metrics`)).text();
  const line = text
    .split("\n")
    .find(
      (l) =>
        l.startsWith("fulcrum_policy_failure_mode_total{") &&
        l.includes('component="rate_limit"') &&
        l.includes(`mode="${mode}"`),
    );
  return line ? Number(line.split(" ").pop()) : 0;
}

describe("Redis stopped mid-test", () => {
  let pid: number | undefined;
  afterAll(() => {
    // Never leave the tier's Redis stopped, whatever happened.
    if (pid !== undefined) process.kill(pid, "SIGCONT");
  });

  it("applies each tenant's failure mode while Redis hangs, and recovers when it returns", async () => {
    const open = await newTenant("open");
    await open.activate({ rules: [toolRule("shell_run"), limited("FAIL_OPEN")] });
    const closed = await newTenant("closed");
    await closed.activate({ rules: [limited("FAIL_CLOSED")] });
    const openKey = (await open.newKey()).key;
    const closedKey = (await closed.newKey()).key;
    const check = (key: string, tools: string[] = []) =>
      edge(key).checkPolicy({ context: { workflowId: "outage", toolNames: tools } });

    // Healthy: both allowed, nothing failed; keys and bundles are now cached.
    for (const key of [openKey, closedKey]) {
      const healthy = await check(key);
      expect(healthy.decision).toBe(Decision.ALLOW);
      expect(healthy.failureMode).toBeUndefined();
    }
    const openBefore = await failureModeCount("FAIL_OPEN");
    const closedBefore = await failureModeCount("FAIL_CLOSED");

    pid = await redisPid();
    process.kill(pid, "SIGSTOP");
    try {
      const failedOpen = await check(openKey);
      expect(failedOpen.decision).toBe(Decision.ALLOW);
      expect(failedOpen.reason).toBe(DecisionReason.POLICY);
      expect(failedOpen.failureMode).toMatchObject({
        component: "rate_limit",
        mode: FailureMode.FAIL_OPEN,
      });
      // Policies still apply from the last good bundle: fail-open never skips them.
      const stillDenied = await check(openKey, ["shell_run"]);
      expect(stillDenied.decision).toBe(Decision.DENY);

      const failedClosed = await check(closedKey);
      expect(failedClosed.decision).toBe(Decision.DENY);
      expect(failedClosed.reason).toBe(DecisionReason.FAIL_CLOSED);
      expect(failedClosed.failureMode?.mode).toBe(FailureMode.FAIL_CLOSED);

      expect(await failureModeCount("FAIL_OPEN")).toBeGreaterThan(openBefore);
      expect(await failureModeCount("FAIL_CLOSED")).toBeGreaterThan(closedBefore);
      const ready = await fetch(`${edgeUrl()}/readyz`);
      expect(ready.status).toBe(503);
    } finally {
      process.kill(pid, "SIGCONT");
      pid = undefined;
    }

    const recoveredMs = await timeUntil(async () => {
      const res = await check(closedKey);
      return res.decision === Decision.ALLOW && res.failureMode === undefined;
    }, 10_000);
    expect(recoveredMs).toBeLessThan(10_000);
    const recovered = await check(openKey);
    expect(recovered.failureMode).toBeUndefined();
    expect(recovered.rateLimits[0]?.failed).toBe(false);
  });
});
