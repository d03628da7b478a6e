/**
 * bench:budget's settle section: CostService.RecordUsage through the management API
 * (loopback HTTP → functions → Neon driver → WebSocket proxy → PostgreSQL, then the
 * ledger's settle in Redis), in a closed loop at each concurrency, every call against
 * the same two budgets (tenant and workflow) — the row locks every settle of a tenant
 * takes, so concurrency measures how settles queue on them. Every answer is checked
 * (a cost event id, both budgets counted).
 */
import { randomUUID } from "node:crypto";
import type { Client } from "@connectrpc/connect";
import type { CostService } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { percentile } from "../load.js";

export interface RecordUsageRow {
  concurrency: number;
  calls: number;
  callsPerSec: number;
  p50Ms: number;
  p99Ms: number;
}

export async function measureRecordUsage(
  costs: Client<typeof CostService>,
  workflowId: string,
  concurrency: number,
  calls: number,
): Promise<RecordUsageRow> {
  const latencies = new Float64Array(calls);
  let next = 0;
  const worker = async () => {
    for (;;) {
      const i = next++;
      if (i >= calls) return;
      const started = performance.now();
      const res = await costs.recordUsage({
        workflowId,
        modelId: "gpt-4o-mini",
        inputTokens: 120n,
        outputTokens: 30n,
        llmCalls: 1,
        idempotencyKey: randomUUID(),
      });
      latencies[i] = performance.now() - started;
      if (!res.costEventId || res.budgets.length !== 2) {
        throw new Error(`RecordUsage answered ${JSON.stringify(res)}`);
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wallMs = performance.now() - started;
  const sorted = latencies.sort();
  return {
    concurrency,
    calls,
    callsPerSec: (calls / wallMs) * 1000,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
  };
}
