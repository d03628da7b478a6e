/**
 * Phase 2, end-to-end lag at a steady offered rate, the processor running: each event
 * is built (timestamped) when it is published, so in ClickHouse
 * `inserted_at − event_time` is publish → insert of its block. `inserted_at` is the
 * column's DEFAULT now64(3), taken by the server when it writes the insert's block; the
 * rows become visible when that insert commits, a few ms later. Quantiles are computed
 * by ClickHouse over every row of the phase (`quantilesExact`).
 *
 * Cross-check without the column: every `sampleEvery`-th event is followed by polling
 * ClickHouse for its id every POLL_MS; its lag is first-seen − publish (resolution
 * POLL_MS plus the query's time).
 */
import { performance } from "node:perf_hooks";
import { type CpuShares, startCpuAccounting } from "../cpu-accounting.js";
import { percentile } from "../load.js";
import type { Pipeline } from "./pipeline.js";
import { offerAtRate, type RateResult, type Sample } from "./publisher.js";
import { sleep, waitForRows } from "./throughput.js";

const POLL_MS = 200;
/** Followed events per second of the phase. */
const SAMPLES_PER_SECOND = 10;

export interface LagResult {
  rate: number;
  durationMs: number;
  source: string;
  publish: RateResult;
  /** Rows of the phase (FINAL) once drained; must equal publish.published. */
  rows: number;
  /** From ClickHouse: inserted_at − event_time over every row. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** The polled samples: first seen − publish. */
  sampled: number;
  sampledP50Ms: number;
  sampledP99Ms: number;
  sampledMaxMs: number;
  cpu: CpuShares;
  problems: string[];
}

/** Polls ClickHouse for the samples' ids; resolves to each one's first-seen lag. */
function followSamples(pipeline: Pipeline, source: string) {
  const waiting = new Map<string, Sample>();
  const lags: number[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped || waiting.size > 0) {
      if (waiting.size > 0) {
        const ids = [...waiting.keys()];
        const result = await pipeline.clickhouse.query({
          query:
            "SELECT toString(event_id) AS id FROM events WHERE source = {source:String} AND event_id IN {ids:Array(UUID)}",
          query_params: { source, ids },
          format: "JSONEachRow",
        });
        const seenAt = Date.now();
        for (const { id } of (await result.json()) as { id: string }[]) {
          const sample = waiting.get(id);
          if (!sample) continue;
          waiting.delete(id);
          lags.push(seenAt - sample.sentAtMs);
        }
      }
      await sleep(POLL_MS);
    }
  })();
  return {
    add: (sample: Sample) => waiting.set(sample.id, sample),
    /** Waits for the outstanding samples (up to `timeoutMs`), then stops polling. */
    async finish(timeoutMs: number): Promise<number[]> {
      const deadline = performance.now() + timeoutMs;
      while (waiting.size > 0 && performance.now() < deadline) await sleep(POLL_MS);
      stopped = true;
      waiting.clear();
      await loop;
      return lags;
    },
  };
}

export async function measureLag(
  pipeline: Pipeline,
  options: {
    rate: number;
    durationMs: number;
    tenants: number;
    /** Event indices of this phase start here (unique ids and spread over the run). */
    firstIndex: number;
    cpuParts: () => Record<string, number>;
  },
  log: (line: string) => void,
): Promise<LagResult> {
  const { rate, durationMs, tenants, firstIndex } = options;
  const source = `bench-lag-${rate}`;
  const problems: string[] = [];
  log(`phase 2: ${rate} events/s for ${durationMs / 1000} s, processor running…`);
  const follower = followSamples(pipeline, source);
  const stopCpu = startCpuAccounting(options.cpuParts());
  const publish = await offerAtRate(
    {
      natsUrl: pipeline.natsUrl,
      rate,
      durationMs,
      tenants,
      firstIndex,
      source,
      sampleEvery: Math.max(1, Math.round(rate / SAMPLES_PER_SECOND)),
    },
    follower.add,
  );
  const drained = await waitForRows(
    () => pipeline.rows({ source }),
    publish.published,
    120_000,
    250,
  );
  const cpu = stopCpu();
  const sampledLags = Float64Array.from(await follower.finish(10_000)).sort();
  if (!drained) problems.push(`${source}: not all ${publish.published} rows arrived within 120 s`);
  if (publish.failed > 0 || publish.duplicates > 0) {
    problems.push(
      `${source}: ${publish.failed} publishes failed, ${publish.duplicates} duplicates`,
    );
  }
  if (sampledLags.length < publish.samples.length) {
    problems.push(
      `${source}: ${publish.samples.length - sampledLags.length} followed events never seen`,
    );
  }

  const result = await pipeline.clickhouse.query({
    query: `SELECT count() AS n,
        quantilesExact(0.5, 0.99)(toUnixTimestamp64Milli(inserted_at) - toUnixTimestamp64Milli(event_time)) AS q,
        max(toUnixTimestamp64Milli(inserted_at) - toUnixTimestamp64Milli(event_time)) AS max
      FROM events FINAL WHERE source = {source:String}`,
    query_params: { source },
    format: "JSONEachRow",
  });
  const [row] = (await result.json()) as {
    n: string;
    q: (string | number)[];
    max: string | number;
  }[];
  const rows = Number(row?.n ?? 0);
  if (rows !== publish.published) {
    problems.push(`${source}: ${rows} rows FINAL, expected exactly ${publish.published}`);
  }
  const lag: LagResult = {
    rate,
    durationMs,
    source,
    publish,
    rows,
    p50Ms: Number(row?.q[0] ?? Number.NaN),
    p99Ms: Number(row?.q[1] ?? Number.NaN),
    maxMs: Number(row?.max ?? Number.NaN),
    sampled: sampledLags.length,
    sampledP50Ms: percentile(sampledLags, 50),
    sampledP99Ms: percentile(sampledLags, 99),
    sampledMaxMs: sampledLags.length ? (sampledLags[sampledLags.length - 1] as number) : Number.NaN,
    cpu,
    problems,
  };
  log(
    `  offered ${rate}/s, achieved ${Math.round(publish.perSec)}/s; lag p50 ${lag.p50Ms} ms, p99 ${lag.p99Ms} ms, max ${lag.maxMs} ms; sampled (${lag.sampled}) p50 ${lag.sampledP50Ms} ms, p99 ${lag.sampledP99Ms} ms`,
  );
  return lag;
}
