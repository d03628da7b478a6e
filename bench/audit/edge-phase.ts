/**
 * Phase 3, decision latency while the pipeline is saturated: CheckPolicy against the
 * edge Worker (its decision events flowing through AUDIT_BUFFER → NATS WebSocket →
 * the stream → the processor → ClickHouse) at each concurrency, in three states:
 *
 *   idle        the processor running, nothing but the edge's own events to store;
 *   saturated   the processor restarted on a backlog it drains at full speed;
 *   idle again  once that backlog is stored (the spread of the two idle runs is the
 *               run-to-run noise the saturated figures are compared with).
 *
 * The edge's requests and reply checks are bench:edge's; every decision the edge made
 * must end up in ClickHouse exactly once (and every DENY in PostgreSQL `events`).
 */
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { type CpuShares, startCpuAccounting } from "../cpu-accounting.js";
import { closedLoop, createHttpClient, summarize } from "../load.js";
import type { AuditEdge } from "./edge-target.js";
import { benchEvent, benchMessage } from "./events.js";
import type { Pipeline } from "./pipeline.js";
import { publishFast } from "./publisher.js";

export const BACKLOG_SOURCE = "bench-edge-backlog";
/** The source decisionToEvent gives the edge's decision events. */
const EDGE_SOURCE = "fulcrum-edge";

/**
 * `saturated, nice 19`: the same backlog draining with the processor, NATS and
 * ClickHouse at the lowest CPU priority — what the edge sees when the pipeline cannot
 * take CPU from it, as on separate machines. Not the headline figure; it tells CPU
 * contention apart from any dependency of the decision on the pipeline.
 */
export type PipelineState = "idle" | "saturated" | "saturated, nice 19" | "idle again";

export interface EdgeLatencyRow {
  state: PipelineState;
  concurrency: number;
  requests: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  reqPerSec: number;
  errors: number;
  errorSamples: string[];
  /** Backlog rows the processor stored during the run (saturated: it was busy). */
  rowsStoredDuring: number;
  /** Rows/s the processor stored during the run. */
  rowsPerSecDuring: number;
  /** Backlog still unstored when the run ended (> 0: saturated for the whole run). */
  backlogLeftAtEnd: number;
  cpu: CpuShares;
}

export interface EdgePhaseResult {
  rows: EdgeLatencyRow[];
  /** Backlog events published over the saturated runs. */
  backlog: number;
  /** Their publish rate (core publishes). */
  backlogPerSec: number;
  /** Every CheckPolicy sent (agreement checks, warm-ups, measured). */
  decisions: number;
  denies: number;
  /** Rows of the edge tenant in ClickHouse (FINAL) at the end: must equal `decisions`. */
  edgeRows: number;
  /** Governance rows (policy.violation) of the tenant in PostgreSQL: must equal `denies`. */
  pgViolations: number;
  problems: string[];
}

export interface EdgePhaseOptions {
  concurrencies: number[];
  requests: (concurrency: number) => number;
  warmup: number;
  /** Backlog to keep before each saturated run; default from drainPerSec. */
  backlog: number | undefined;
  /** Phase 1's rate: sizes the backlog. */
  drainPerSec: number;
  tenants: number;
  firstIndex: number;
  tenantId: string;
  cpuParts: () => Record<string, number>;
  /** DENY decisions of the tenant the processor wrote to PostgreSQL. */
  pgViolations: () => Promise<number>;
}

export async function measureEdgeUnderLoad(
  pipeline: Pipeline,
  edge: AuditEdge,
  options: EdgePhaseOptions,
  log: (line: string) => void,
): Promise<EdgePhaseResult> {
  const problems: string[] = [];
  let decisions = 0;
  let denies = 0;
  // Scenario i % 3: ALLOW, DENY, DENY (bench/edge/scenarios.ts).
  const count = (n: number) => {
    decisions += n;
    denies += n - Math.ceil(n / edge.requests.length);
  };

  const client = await createHttpClient(edge.origin, Math.max(...options.concurrencies));
  try {
    const check = await closedLoop(client, edge.requests, edge.requests.length, 1);
    count(edge.requests.length);
    if (check.errors > 0) {
      throw new Error(`the edge does not decide as expected: ${check.errorSamples.join(" | ")}`);
    }
    // The edge's decisions (decisionToEvent's source), not the tenant's management events.
    const edgeEvents = () => pipeline.rows({ tenantId: options.tenantId, source: EDGE_SOURCE });
    let backlog = 0;
    let publishMs = 0;
    const backlogRows = () => pipeline.rows({ source: BACKLOG_SOURCE, final: false });
    const run = async (state: PipelineState, concurrency: number): Promise<EdgeLatencyRow> => {
      await closedLoop(client, edge.requests, options.warmup, concurrency);
      count(options.warmup);
      const total = options.requests(concurrency);
      const rowsBefore = await backlogRows();
      const stopCpu = startCpuAccounting(options.cpuParts());
      const started = performance.now();
      const result = await closedLoop(client, edge.requests, total, concurrency);
      const wallMs = performance.now() - started;
      const cpu = stopCpu();
      count(total);
      const rowsAfter = await backlogRows();
      const row: EdgeLatencyRow = {
        state,
        concurrency,
        requests: total,
        ...summarize(result),
        errors: result.errors,
        errorSamples: result.errorSamples,
        rowsStoredDuring: rowsAfter - rowsBefore,
        rowsPerSecDuring: ((rowsAfter - rowsBefore) / wallMs) * 1000,
        backlogLeftAtEnd: state.startsWith("saturated") ? backlog - rowsAfter : 0,
        cpu,
      };
      log(
        `  ${state} c=${concurrency}: p50 ${row.p50Ms.toFixed(2)} ms, p99 ${row.p99Ms.toFixed(2)} ms, ${Math.round(row.reqPerSec)} req/s, ${row.errors} errors; processor stored ${Math.round(row.rowsPerSecDuring)} backlog rows/s`,
      );
      return row;
    };

    const rows: EdgeLatencyRow[] = [];
    log("phase 3: edge decision latency, pipeline idle…");
    for (const c of options.concurrencies) rows.push(await run("idle", c));

    // Before each saturated run: the processor stopped, the backlog topped up to what it
    // drains in 4× the idle run's duration, the processor restarted.
    for (const c of options.concurrencies) {
      const idle = rows.find((r) => r.state === "idle" && r.concurrency === c);
      const seconds = (options.warmup + options.requests(c)) / (idle?.reqPerSec ?? 1);
      // 4× per saturated run (two of them): one goes 2–3.5× slower than its idle run on
      // 2 cores.
      const want = options.backlog ?? Math.ceil(options.drainPerSec * seconds * 8);
      await pipeline.processor()?.stop();
      const more = Math.max(0, want - (backlog - (await backlogRows())));
      log(
        `  c=${c}: processor stopped; topping the backlog up by ${more.toLocaleString("en-US")} events…`,
      );
      const published = await publishFast(pipeline.nc, more, (i) =>
        benchMessage(benchEvent(options.firstIndex + backlog + i, options.tenants), BACKLOG_SOURCE),
      );
      backlog += published.published;
      publishMs += published.wallMs;
      await pipeline.startProcessor();
      rows.push(await run("saturated", c));
      const pipelinePids = [pipeline.processor()?.pid, pipeline.natsPid, pipeline.clickhousePid];
      renice(pipelinePids, 19);
      try {
        rows.push(await run("saturated, nice 19", c));
      } finally {
        renice(pipelinePids, 0);
      }
    }
    if (rows.some((r) => r.state.startsWith("saturated") && r.backlogLeftAtEnd <= 0)) {
      problems.push(
        "the backlog ran out before a saturated run ended: raise BENCH_EDGE_BACKLOG (not every figure is under saturation)",
      );
    }

    log("  waiting for the backlog to be stored…");
    await waitUntil(async () => (await backlogRows()) >= backlog, 300_000);
    for (const c of options.concurrencies) rows.push(await run("idle again", c));

    // The edge's events: buffered in the Durable Object, published over WebSocket.
    log("  checking that every decision is in ClickHouse (and every DENY in PostgreSQL)…");
    await waitUntil(async () => (await edgeEvents()) >= decisions, 60_000);
    await waitUntil(async () => (await options.pgViolations()) >= denies, 30_000);
    const edgeRows = await edgeEvents();
    const pgViolations = await options.pgViolations();
    const backlogFinal = await pipeline.rows({ source: BACKLOG_SOURCE });
    if (edgeRows !== decisions) {
      problems.push(
        `edge decisions in ClickHouse: ${edgeRows} rows FINAL, expected exactly ${decisions}`,
      );
    }
    if (pgViolations !== denies) {
      problems.push(
        `DENY decisions in PostgreSQL events: ${pgViolations}, expected exactly ${denies}`,
      );
    }
    if (backlogFinal !== backlog) {
      problems.push(`backlog rows FINAL ${backlogFinal}, expected exactly ${backlog}`);
    }
    for (const r of rows.filter((r) => r.errors > 0)) {
      problems.push(
        `edge ${r.state} c=${r.concurrency}: ${r.errors} errors: ${r.errorSamples.join(" | ")}`,
      );
    }
    return {
      rows,
      backlog,
      backlogPerSec: (backlog / publishMs) * 1000,
      decisions,
      denies,
      edgeRows,
      pgViolations,
      problems,
    };
  } finally {
    await client.close();
  }
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return check();
}

/**
 * Sets the CPU priority of processes, all their threads (on Linux `renice -p` moves
 * one thread: nats-server and ClickHouse run many) and all their descendants.
 */
function renice(pids: (number | undefined)[], niceness: number): void {
  const tree = (pid: number): number[] => {
    const children = spawnSync("pgrep", ["-P", String(pid)], { encoding: "utf8" });
    const direct = (children.stdout ?? "").split("\n").filter(Boolean).map(Number);
    return [pid, ...direct.flatMap(tree)];
  };
  const threads = (pid: number): string[] => {
    try {
      return readdirSync(`/proc/${pid}/task`);
    } catch {
      return [];
    }
  };
  const all = pids
    .filter((p): p is number => p !== undefined && Number.isFinite(p))
    .flatMap(tree)
    .flatMap(threads);
  if (all.length > 0) spawnSync("renice", ["-n", String(niceness), "-p", ...all]);
}
