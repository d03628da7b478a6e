/**
 * `npm run bench:audit`: the audit pipeline on this machine — events published to
 * NATS JetStream (FULCRUM_EXECUTION_EVENTS), stored in ClickHouse by the event
 * processor — and the edge's decision latency while that pipeline is saturated.
 *
 *   tsx bench/audit.ts
 *   BENCH_EVENTS=100000 BENCH_LAG_RATES=5000 BENCH_LAG_SECONDS=10 BENCH_EDGE=0 tsx bench/audit.ts
 *
 * 1. throughput: N events published with the processor stopped, then the processor
 *    started and timed until ClickHouse holds exactly N rows (bench/audit/throughput.ts);
 * 2. lag: a steady offered rate with the processor running; publish → row lag from
 *    ClickHouse's inserted_at, cross-checked by polling (bench/audit/lag.ts);
 * 3. edge: CheckPolicy p50/p99 against the edge Worker with the pipeline idle, then
 *    saturated with a backlog, then idle again (bench/audit/edge-phase.ts).
 *
 * Everything is this run's own (NATS, ClickHouse server and database, PostgreSQL
 * database, Redis namespace, processor, edge) and is stopped or dropped at the end.
 * Counts are checked exactly; any mismatch exits 1. See bench/README.md.
 */
import { readdirSync, readFileSync } from "node:fs";
import { parseEventProcessorConfig } from "../workers/event-processor/src/config.js";
import { type EdgePhaseResult, measureEdgeUnderLoad } from "./audit/edge-phase.js";
import { type AuditEdge, startAuditEdge } from "./audit/edge-target.js";
import { measureLag } from "./audit/lag.js";
import { startPipeline } from "./audit/pipeline.js";
import { formatAuditReport } from "./audit/report.js";
import { measureThroughput } from "./audit/throughput.js";
import { envInt, envInts, runIfMain } from "./cli.js";
import { startControlPlane } from "./edge/control-plane.js";
import { startEdgeRedisRest } from "./edge/redis-rest.js";
import { withResources } from "./edge/resources.js";

/** The processor's batch settings as it parses them from this environment. */
function batchSettings(): string {
  const c = parseEventProcessorConfig({ ...process.env, DATABASE_URL: "postgres://unused" });
  return `BATCH_MAX_EVENTS ${c.batchMaxEvents}, BATCH_MAX_WAIT_MS ${c.batchMaxWaitMs}, BATCH_CONCURRENCY ${c.batchConcurrency}`;
}

/**
 * The root process of a machine service by name (PostgreSQL's postmaster, Redis), so
 * its CPU is reported apart from other work; NaN when there is none.
 */
function servicePid(comm: string): number {
  const name = (pid: string | number) => readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  let pids: string[];
  try {
    pids = readdirSync("/proc").filter((d) => /^\d+$/.test(d));
  } catch {
    return Number.NaN;
  }
  for (const pid of pids) {
    try {
      if (name(pid) !== comm) continue;
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const parent = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1] ?? "0";
      if (name(parent) !== comm) return Number(pid);
    } catch {}
  }
  return Number.NaN;
}

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const events = envInt("BENCH_EVENTS", 200_000);
  const tenants = envInt("BENCH_TENANTS", 8);
  const lagRates = envInts("BENCH_LAG_RATES", [5000, 10_000, 20_000]);
  const lagMs = envInt("BENCH_LAG_SECONDS", 15) * 1000;
  const withEdge = process.env.BENCH_EDGE?.trim() !== "0";
  const concurrencies = envInts("BENCH_EDGE_CONCURRENCIES", [1, 8]);
  const edgeRequests = process.env.BENCH_EDGE_REQUESTS?.trim()
    ? envInt("BENCH_EDGE_REQUESTS", 0)
    : undefined;
  const warmup = envInt("BENCH_WARMUP", 200);

  const problems: string[] = [];
  const report = await withResources(log, async (resources) => {
    log("control plane: PostgreSQL, Redis, management API; tenant, policy, key…");
    const plane = await startControlPlane(resources);
    log("pipeline: NATS (JetStream + WebSocket), ClickHouse (fresh database)…");
    const pipeline = await startPipeline(
      resources,
      { url: plane.databaseUrl, wsProxyPort: plane.pgWsProxyPort },
      log,
    );
    log(
      `  NATS ${pipeline.natsUrl} (ws ${pipeline.natsWsUrl}); ${pipeline.clickhouseDetail} at ${pipeline.clickhouseConfig.url}, database ${pipeline.clickhouseConfig.database}`,
    );
    let edge: AuditEdge | undefined;
    let restPid = Number.NaN;
    const postgresPid = servicePid("postgres");
    const redisPid = servicePid("redis-server");
    const cpuParts = () => ({
      postgres: postgresPid,
      redis: redisPid,
      processor: pipeline.processor()?.pid ?? Number.NaN,
      nats: pipeline.natsPid,
      clickhouse: pipeline.clickhousePid,
      edge: edge?.pid ?? Number.NaN,
      redisRest: restPid,
    });

    const throughput = await measureThroughput(pipeline, { events, tenants, cpuParts }, log);
    problems.push(...throughput.problems);

    const lags = [];
    let nextIndex = events;
    for (const rate of lagRates) {
      const lag = await measureLag(
        pipeline,
        { rate, durationMs: lagMs, tenants, firstIndex: nextIndex, cpuParts },
        log,
      );
      nextIndex += lag.publish.published;
      problems.push(...lag.problems);
      lags.push(lag);
    }

    let edgeResult: EdgePhaseResult | { skipped: string } = { skipped: "BENCH_EDGE=0" };
    if (withEdge) {
      const rest = await startEdgeRedisRest(resources, plane.redisUrl);
      restPid = rest.pid;
      log("starting the edge (wrangler dev) with AUDIT_BUFFER → this run's NATS…");
      edge = await startAuditEdge(resources, plane, rest, pipeline.natsWsUrl);
      const backlog = process.env.BENCH_EDGE_BACKLOG?.trim()
        ? envInt("BENCH_EDGE_BACKLOG", 0)
        : undefined;
      const result = await measureEdgeUnderLoad(
        pipeline,
        edge,
        {
          concurrencies,
          requests: (c) => edgeRequests ?? (c <= 1 ? 1500 : 3000),
          warmup,
          backlog,
          drainPerSec: throughput.perSec,
          tenants,
          firstIndex: nextIndex,
          tenantId: plane.tenantId,
          cpuParts,
          pgViolations: async () => {
            const { rows } = await plane.owner.query(
              "SELECT count(*)::int AS n FROM events WHERE tenant_id = $1 AND action = 'policy.violation'",
              [plane.tenantId],
            );
            return Number(rows[0]?.n ?? Number.NaN);
          },
        },
        log,
      );
      problems.push(...result.problems);
      edgeResult = result;
    }

    const deadLetters = await pipeline.deadLetters();
    if (deadLetters > 0) problems.push(`${deadLetters} events were dead-lettered`);
    const unacknowledged = await pipeline.unacknowledged();
    if (unacknowledged > 0)
      problems.push(`${unacknowledged} events still unacknowledged at the end`);
    return formatAuditReport(
      {
        tenants,
        nats: `nats-server ${pipeline.natsUrl} (file storage)`,
        clickhouse: pipeline.clickhouseDetail,
        batch: batchSettings(),
      },
      throughput,
      lags,
      edgeResult,
    );
  });
  console.log(report);
  if (problems.length > 0) {
    console.error(`\nFAILED:\n  ${problems.join("\n  ")}`);
    process.exitCode = 1;
  }
}

runIfMain(import.meta.url, "bench:audit", main);
