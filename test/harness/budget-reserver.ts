/**
 * One "edge process" for test/integration/budget-two-processes.test.ts: its own Upstash
 * REST server in front of the shared Redis, its own @upstash/redis client and
 * BudgetLedger, reserving concurrently against the same counter as the other process.
 *
 *   env    BUDGET_REDIS_URL, BUDGET_NAMESPACE, BUDGET_TENANT, BUDGET_COUNTER_KEY,
 *          BUDGET_LIMITS (JSON BudgetLimits), BUDGET_ESTIMATE (JSON), BUDGET_CALLS
 *   stdout "ready\n" once set up; then waits for "go\n" on stdin (so both processes start
 *          together), reserves BUDGET_CALLS times at once and prints one JSON line:
 *          {"admitted": n, "refused": n, "errors": [..], "reservedByMe": tokens+cost}
 */
import { randomBytes } from "node:crypto";
import { createInterface } from "node:readline";
import { Redis } from "@upstash/redis";
import { BudgetLedger } from "../../core/budget/ledger.js";
import { startUpstashRestServer } from "../../scripts/lib/upstash-rest-server.js";

function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`budget-reserver: ${name} is not set`);
  return value;
}

async function main(): Promise<void> {
  const token = randomBytes(16).toString("hex");
  const server = await startUpstashRestServer({
    port: 0,
    redisUrl: env("BUDGET_REDIS_URL"),
    token,
  });
  // One HTTP request per call (no auto-pipelining): the two processes' reservations then
  // reach Redis interleaved over many connections instead of as one batch each.
  const redis = new Redis({
    url: server.url,
    token,
    enableTelemetry: false,
    retry: false,
    enableAutoPipelining: false,
  });
  const ledger = new BudgetLedger({ redis, keys: env("BUDGET_NAMESPACE"), timeoutMs: 20_000 });
  const counter = {
    key: env("BUDGET_COUNTER_KEY"),
    limits: JSON.parse(env("BUDGET_LIMITS")),
    suspended: false,
    expireAtMs: Date.now() + 3_600_000,
  };
  const estimate = JSON.parse(env("BUDGET_ESTIMATE"));
  const calls = Number(env("BUDGET_CALLS"));
  // Load the script before the start signal, so both processes race on reservations only.
  // (A zero estimate runs the reserve script without reserving anything.)
  const zero = { tokens: 0, costMicros: 0, llmCalls: 0, toolCalls: 0 };
  await ledger.reserve({
    tenantId: env("BUDGET_TENANT"),
    counters: [counter],
    estimate: zero,
    ttlMs: 1000,
  });
  process.stdout.write("ready\n");
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) if (line.trim() === "go") break;
  lines.close();

  const results = await Promise.allSettled(
    Array.from({ length: calls }, () =>
      ledger.reserve({
        tenantId: env("BUDGET_TENANT"),
        counters: [counter],
        estimate,
        ttlMs: 600_000,
      }),
    ),
  );
  const admitted = results.filter((r) => r.status === "fulfilled" && r.value.ok).length;
  const refused = results.filter((r) => r.status === "fulfilled" && !r.value.ok).length;
  const errors = results.flatMap((r) => (r.status === "rejected" ? [String(r.reason)] : []));
  process.stdout.write(`${JSON.stringify({ admitted, refused, errors })}\n`);
  await server.close();
}

main().catch((error: unknown) => {
  process.stderr.write(`budget-reserver: ${(error as Error).stack ?? error}\n`);
  process.exit(1);
});
