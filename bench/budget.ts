/**
 * `npm run bench:budget`: the budget ledger (core/budget/ledger.ts) on this machine —
 * @upstash/redis → the local Upstash REST server (a child process, as for bench:edge) →
 * the machine's Redis.
 *
 *   tsx bench/budget.ts
 *   BENCH_OPS=5000 BENCH_CONCURRENCIES=1,8,64 tsx bench/budget.ts
 *
 * 1. throughput: reserve + settle (three counters per call) in a closed loop at each
 *    concurrency: ops/s and p50/p99 latency of reserve alone and of reserve + settle;
 * 2. overshoot: 200 and 1000 reservations started at once against a limit: admitted,
 *    reserved, overshoot (must be 0: anything else exits 1);
 * 3. edge CheckPolicy p50/p99 with budgets on vs off (bench/budget/edge-budgets.ts: the
 *    control plane, workerd and the edge's REST server of bench:edge; BENCH_EDGE=0 skips,
 *    BENCH_EDGE_REQUESTS / BENCH_EDGE_CONCURRENCIES size it).
 *
 * Redis is reused when it answers at FULCRUM_REDIS_URL (else started); every key is in
 * this run's own namespace and deleted at the end. See bench/README.md.
 */
import { randomUUID } from "node:crypto";
import { availableParallelism } from "node:os";
import IORedis from "ioredis";
import { budgetKeysIn } from "../core/budget/budget-keys.js";
import { ensureRedis } from "../scripts/services/ensure-services.js";
import { type EdgeBudgetRow, measureEdgeBudgets } from "./budget/edge-budgets.js";
import {
  measureOvershoot,
  measureThroughput,
  type OvershootRow,
  type ThroughputRow,
} from "./budget/ledger-load.js";
import type { RecordUsageRow } from "./budget/record-usage-load.js";
import { envInts, runIfMain } from "./cli.js";
import { startEdgeRedisRest } from "./edge/redis-rest.js";
import { withResources } from "./edge/resources.js";

const ms = (v: number) => v.toFixed(2);

function formatReport(
  header: string,
  throughput: ThroughputRow[],
  overshoot: OvershootRow[],
  edge: { edge: EdgeBudgetRow[]; settles: RecordUsageRow[] } | null,
): string {
  const lines = [
    "# bench:budget",
    "",
    header,
    "",
    "## Ledger: reserve + settle in Redis (3 counters per call)",
    "",
    "| concurrency | ops | ops/s | reserve p50 ms | reserve p99 ms | reserve+settle p50 ms | reserve+settle p99 ms | Redis RT/op |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...throughput.map(
      (r) =>
        `| ${r.concurrency} | ${r.ops} | ${Math.round(r.opsPerSec)} | ${ms(r.reserveP50)} | ${ms(r.reserveP99)} | ${ms(r.opP50)} | ${ms(r.opP99)} | ${r.roundTrips.toFixed(2)} |`,
    ),
    "",
    "## Overshoot under concurrency (must be 0)",
    "",
    "| concurrent reservations | tokens each | limit | admitted | most that fit | reserved total | overshoot |",
    "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ...overshoot.map(
      (r) =>
        `| ${r.concurrent} | ${r.estimate} | ${r.limit} | ${r.admitted} | ${r.mostThatFit} | ${r.reserved} | ${r.overshoot} |`,
    ),
    "",
    "## Edge CheckPolicy with budgets on vs off",
    "",
  ];
  if (!edge) lines.push("_skipped (BENCH_EDGE=0)_");
  else {
    lines.push(
      "Bare workerd, the tenant's policy, 100 estimated tokens per call; on: a tenant and a workflow budget reserved against on every call.",
      "",
      "| setting | concurrency | requests | p50 ms | p99 ms | req/s | Redis RT/decision |",
      "| :--- | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const r of edge.edge)
      lines.push(
        `| ${r.setting} | ${r.concurrency} | ${r.requests} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} | ${Math.round(r.reqPerSec)} | ${r.redisRoundTrips.toFixed(3)} |`,
      );
    lines.push(
      "",
      "## RecordUsage through the management API (settle: PostgreSQL, then Redis)",
      "",
      "Every call counted on the same tenant and workflow budgets (their row locks serialise a tenant's settles).",
      "",
      "| concurrency | calls | calls/s | p50 ms | p99 ms |",
      "| ---: | ---: | ---: | ---: | ---: |",
      ...edge.settles.map(
        (r) =>
          `| ${r.concurrency} | ${r.calls} | ${Math.round(r.callsPerSec)} | ${ms(r.p50Ms)} | ${ms(r.p99Ms)} |`,
      ),
    );
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const [ops = 3000] = envInts("BENCH_OPS", [3000]);
  const concurrencies = envInts("BENCH_CONCURRENCIES", [1, 8, 64]);
  const [edgeRequests = 2000] = envInts("BENCH_EDGE_REQUESTS", [2000]);
  const problems: string[] = [];
  const report = await withResources(log, async (resources) => {
    const redis = await ensureRedis();
    resources.add(() => redis.stop());
    const namespace = `fulcrum:bench:budget:${randomUUID()}`;
    const keys = budgetKeysIn(namespace);
    const direct = new IORedis(redis.url, { enableAutoPipelining: false });
    resources.add(async () => {
      const left = await direct.keys(`${namespace}:*`);
      if (left.length > 0) await direct.del(...left);
      await direct.quit();
    });
    const rest = await startEdgeRedisRest(resources, redis.url);
    log(
      `Redis ${redis.url} (${redis.startedByUs ? "started" : "reused"}), REST server ${rest.url}`,
    );
    const throughput: ThroughputRow[] = [];
    for (const c of concurrencies) {
      log(`throughput: ${ops} reserve + settle at concurrency ${c}…`);
      throughput.push(await measureThroughput(rest, keys, c, ops, problems));
    }
    const overshoot: OvershootRow[] = [];
    for (const [n, limit] of [
      [200, 10_000],
      [1000, 50_000],
    ] as const) {
      log(`overshoot: ${n} concurrent reservations of 73 tokens against ${limit}…`);
      overshoot.push(await measureOvershoot(rest, keys, n, limit, 73, problems));
    }
    const edge =
      process.env.BENCH_EDGE === "0"
        ? null
        : await measureEdgeBudgets(resources, {
            requests: edgeRequests,
            concurrencies: envInts("BENCH_EDGE_CONCURRENCIES", [1, 8]),
            log,
          });
    const header = `${availableParallelism()} cores, Node ${process.version}; Redis ${redis.url}, Upstash REST server in its own process; ${ops} operations per concurrency (after 50 warm-up)`;
    return formatReport(header, throughput, overshoot, edge);
  });
  console.log(report);
  if (problems.length > 0) {
    console.error(`\nFAILED:\n  ${problems.join("\n  ")}`);
    process.exitCode = 1;
  }
}

runIfMain(import.meta.url, "bench:budget", main);
