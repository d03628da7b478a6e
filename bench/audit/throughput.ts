/**
 * Phase 1, sustained throughput: with the processor stopped, publish N events into
 * FULCRUM_EXECUTION_EVENTS; then start the processor and time until ClickHouse holds
 * all N rows (polling `count()`, then `count() FINAL` to verify exactly N).
 */
import { performance } from "node:perf_hooks";
import { type CpuShares, startCpuAccounting } from "../cpu-accounting.js";
import { benchEvent, benchMessage } from "./events.js";
import type { Pipeline } from "./pipeline.js";
import { type PublishResult, publishBacklog } from "./publisher.js";

export const THROUGHPUT_SOURCE = "bench-throughput";

export interface ThroughputResult {
  events: number;
  publish: PublishResult;
  publishCpu: CpuShares;
  /** Processor spawn → its /healthz answered. */
  startupMs: number;
  /** Processor ready → all N rows visible. */
  drainMs: number;
  /** Rows already stored when the processor's /healthz first answered. */
  rowsAtReady: number;
  /** (N − rowsAtReady) / drainMs. */
  perSec: number;
  /** N / (spawn → all visible): with the processor's start. */
  perSecWithStartup: number;
  /** Rows FINAL at the end (must be N) and without FINAL (N + not yet merged redeliveries). */
  rowsFinal: number;
  rowsRaw: number;
  drainCpu: CpuShares;
  problems: string[];
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls until `rows()` reaches `want` (true) or `timeoutMs` passes (false). */
export async function waitForRows(
  rows: () => Promise<number>,
  want: number,
  timeoutMs: number,
  everyMs = 100,
): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    if ((await rows()) >= want) return true;
    await sleep(everyMs);
  }
  return (await rows()) >= want;
}

export async function measureThroughput(
  pipeline: Pipeline,
  options: { events: number; tenants: number; cpuParts: () => Record<string, number> },
  log: (line: string) => void,
): Promise<ThroughputResult> {
  const { events, tenants } = options;
  const problems: string[] = [];
  log(`phase 1: publishing ${events.toLocaleString("en-US")} events (processor stopped)…`);
  const stopPublishCpu = startCpuAccounting({ nats: pipeline.natsPid });
  const publish = await publishBacklog(pipeline.js, events, (i) =>
    benchMessage(benchEvent(i, tenants), THROUGHPUT_SOURCE),
  );
  const publishCpu = stopPublishCpu();
  log(
    `  published ${publish.published} in ${(publish.wallMs / 1000).toFixed(1)} s: ${Math.round(publish.perSec)} events/s`,
  );
  if (publish.published !== events || publish.duplicates > 0 || publish.failed > 0) {
    problems.push(
      `publish: ${publish.published}/${events} acknowledged, ${publish.duplicates} duplicates, ${publish.failed} failed ${publish.errorSamples.join(" | ")}`,
    );
  }

  log("  starting the event processor…");
  const spawned = performance.now();
  await pipeline.startProcessor();
  // It consumes before its /healthz answers: time what is left once it does (the count
  // is read before `ready` is taken, so the rate can only be underestimated).
  const rowsAtReady = await pipeline.rows({ final: false });
  const ready = performance.now();
  const stopDrainCpu = startCpuAccounting(options.cpuParts());
  const complete = await waitForRows(
    () => pipeline.rows({ final: false }),
    events,
    Math.max(120_000, events / 2),
  );
  const done = performance.now();
  const drainCpu = stopDrainCpu();
  if (!complete) problems.push(`drain: ClickHouse did not reach ${events} rows in time`);
  let rowsFinal = await pipeline.rows({ source: THROUGHPUT_SOURCE });
  // count() without FINAL counts a redelivered event twice until merged: wait for FINAL too.
  if (rowsFinal < events) {
    await waitForRows(() => pipeline.rows({ source: THROUGHPUT_SOURCE }), events, 30_000);
    rowsFinal = await pipeline.rows({ source: THROUGHPUT_SOURCE });
  }
  const rowsRaw = await pipeline.rows({ source: THROUGHPUT_SOURCE, final: false });
  if (rowsFinal !== events) problems.push(`rows FINAL ${rowsFinal}, expected exactly ${events}`);
  const drainMs = done - ready;
  log(
    `  ${events - rowsAtReady} rows in ${(drainMs / 1000).toFixed(1)} s after a ${((ready - spawned) / 1000).toFixed(1)} s start (${rowsAtReady} stored by then): ${Math.round(((events - rowsAtReady) / drainMs) * 1000)} events/s; rows FINAL ${rowsFinal}, raw ${rowsRaw}`,
  );
  return {
    events,
    publish,
    publishCpu,
    startupMs: ready - spawned,
    drainMs,
    rowsAtReady,
    perSec: ((events - rowsAtReady) / drainMs) * 1000,
    perSecWithStartup: (events / (done - spawned)) * 1000,
    rowsFinal,
    rowsRaw,
    drainCpu,
    problems,
  };
}
