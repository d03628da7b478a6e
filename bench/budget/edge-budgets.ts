/**
 * bench:budget's edge section: CheckPolicy on the edge Worker (bare workerd, as
 * bench:edge runs it) for one tenant, first with no budget, then with a tenant budget
 * and a workflow budget that every call reserves against (a limit it never reaches).
 * The same request both times (an ALLOW with 100 estimated tokens, PRE_LLM_CALL);
 * every reply is checked: "off" must carry no reservation, "on" one over both budgets.
 * Then RecordUsage through the management API against those budgets
 * (record-usage-load.ts).
 */

import { BudgetPeriod } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import { CostService } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { startControlPlane } from "../edge/control-plane.js";
import { startEdgeRedisRest } from "../edge/redis-rest.js";
import type { Resources } from "../edge/resources.js";
import { CHECK_POLICY, SCENARIOS } from "../edge/scenarios.js";
import { startWorkerdTarget } from "../edge/targets.js";
import { closedLoop, createHttpClient, type LoadRequest, summarize } from "../load.js";
import { measureRecordUsage, type RecordUsageRow } from "./record-usage-load.js";

export interface EdgeBudgetRow {
  setting: "budgets off" | "budgets on";
  concurrency: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  reqPerSec: number;
  /** REST requests the edge made to Redis per decision (auto-pipelined batches count once). */
  redisRoundTrips: number;
}

interface CheckReply {
  decision?: string;
  budget?: { reservationId?: string; budgets?: { budgetId?: string }[] };
}

const WARMUP = 300;

export async function measureEdgeBudgets(
  resources: Resources,
  options: { requests: number; concurrencies: number[]; log: (line: string) => void },
): Promise<{ edge: EdgeBudgetRow[]; settles: RecordUsageRow[] }> {
  const { log } = options;
  log("edge: control plane, the edge's REST server and workerd…");
  const plane = await startControlPlane(resources);
  const rest = await startEdgeRedisRest(resources, plane.redisUrl);
  const target = await startWorkerdTarget(resources, plane, rest);
  const allow = SCENARIOS.find((s) => s.expected === "ALLOW");
  if (!allow) throw new Error("bench:edge has no ALLOW scenario");
  const context = {
    ...allow.context,
    phase: "PHASE_PRE_LLM_CALL",
    toolNames: [],
    estimatedTokens: 100,
  };

  const request = (budgets: number): LoadRequest => ({
    path: CHECK_POLICY,
    body: JSON.stringify({ policyId: plane.policyId, context }),
    headers: { "content-type": "application/json", "x-api-key": plane.checkKey },
    check: (reply) => {
      const body = JSON.parse(reply.body) as CheckReply;
      if (body.decision !== "DECISION_ALLOW") return `decision ${body.decision}`;
      const reserved = body.budget?.reservationId ?? "";
      const seen = body.budget?.budgets?.length ?? 0;
      if (budgets === 0) return reserved || seen ? "a reservation with budgets off" : undefined;
      return reserved && seen === budgets ? undefined : `reservation over ${seen} budgets`;
    },
  });

  const rows: EdgeBudgetRow[] = [];
  const measure = async (setting: EdgeBudgetRow["setting"], budgets: number) => {
    for (const concurrency of options.concurrencies) {
      const client = await createHttpClient(target.origin, concurrency);
      const req = request(budgets);
      const warm = await closedLoop(client, [req], WARMUP, concurrency);
      if (warm.errors > 0) throw new Error(`${setting}: ${warm.errorSamples.join("; ")}`);
      log(`edge ${setting}: ${options.requests} CheckPolicy at concurrency ${concurrency}…`);
      const before = await rest.requests();
      const result = await closedLoop(client, [req], options.requests, concurrency);
      const redisRoundTrips = ((await rest.requests()) - before) / options.requests;
      if (result.errors > 0) throw new Error(`${setting}: ${result.errorSamples.join("; ")}`);
      await client.close();
      const s = summarize(result);
      rows.push({ setting, concurrency, requests: options.requests, ...s, redisRoundTrips });
    }
  };

  await measure("budgets off", 0);
  const costs = plane.manage(CostService);
  const limits = { maxTokens: 1_000_000_000_000n };
  await costs.createBudget({
    budget: { name: "bench tenant budget", period: BudgetPeriod.DAILY, limits },
  });
  await costs.createBudget({
    budget: {
      name: "bench workflow budget",
      period: BudgetPeriod.MONTHLY,
      workflowId: "wf_bench",
      limits,
    },
  });
  // The edge rereads a tenant's budget set every 500 ms.
  await new Promise((resolve) => setTimeout(resolve, 1500));
  await measure("budgets on", 2);

  const settles: RecordUsageRow[] = [];
  for (const concurrency of [1, 8]) {
    log(`RecordUsage: 300 settles at concurrency ${concurrency}…`);
    settles.push(await measureRecordUsage(costs, "wf_bench", concurrency, 300));
  }
  return { edge: rows, settles };
}
