/**
 * Publishing bench events to JetStream the way producers do: `js.publish` with the
 * event id as `Nats-Msg-Id`, many publishes in flight, every PubAck checked (a
 * failed publish is retried with the same id, so JetStream stores it once).
 *
 * - {@link publishBacklog}: as fast as the server acknowledges, a fixed count.
 * - {@link offerAtRate}: open loop at an offered rate from a worker thread; each event
 *   is built (and timestamped) when its turn comes, so its timestamp is its publish time.
 * - {@link publishFast}: core publishes (no PubAck each), for large backlogs.
 */
import { performance } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import type { JetStreamClient } from "@nats-io/jetstream";
import { headers, type NatsConnection } from "@nats-io/nats-core";
import type { BenchMessage } from "./events.js";
import type { RateWorkerInput, RateWorkerMessage } from "./rate-worker.js";

export interface PublishResult {
  /** Events acknowledged by JetStream (stored). */
  published: number;
  wallMs: number;
  perSec: number;
  /** PubAcks flagged duplicate: an id published twice. Must be 0. */
  duplicates: number;
  /** Publishes that failed after retries. Must be 0. */
  failed: number;
  errorSamples: string[];
}

const RETRIES = 3;

async function publishOne(
  js: JetStreamClient,
  message: BenchMessage,
  result: PublishResult,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      const ack = await js.publish(message.subject, message.data, { msgID: message.id });
      // A retry after a lost ack is answered duplicate: that one was stored once, fine.
      if (ack.duplicate && attempt === 1) result.duplicates++;
      result.published++;
      return;
    } catch (error) {
      if (attempt >= RETRIES) {
        result.failed++;
        if (result.errorSamples.length < 5) result.errorSamples.push((error as Error).message);
        return;
      }
    }
  }
}

function emptyResult(): PublishResult {
  return { published: 0, wallMs: 0, perSec: 0, duplicates: 0, failed: 0, errorSamples: [] };
}

/** Publishes events 0..count-1 of `build` with `inflight` publishes outstanding. */
export async function publishBacklog(
  js: JetStreamClient,
  count: number,
  build: (i: number) => BenchMessage,
  inflight = 256,
): Promise<PublishResult> {
  const result = emptyResult();
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) await publishOne(js, build(i), result);
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: Math.min(inflight, count) }, worker));
  result.wallMs = performance.now() - started;
  result.perSec = (result.published / result.wallMs) * 1000;
  return result;
}

/** One event the lag phase follows by polling ClickHouse for it. */
export interface Sample {
  id: string;
  tenantId: string;
  /** Date.now() when its publish was sent (its timestamp). */
  sentAtMs: number;
}

export interface RateResult extends PublishResult {
  offeredPerSec: number;
  /** Most events due at one tick (1 ms): a stalled producer shows as a burst. */
  maxBehind: number;
  /** Time the send loop took (≥ the duration; longer when the producer fell behind). */
  sendMs: number;
  samples: Sample[];
}

/**
 * Offers `rate` events per second for `durationMs` from a worker thread
 * (rate-worker.ts): every millisecond it sends what is due by then (open loop: a slow
 * pipeline does not slow the offer). Core NATS publishes with `Nats-Msg-Id`, no PubAck
 * per event: one producer thread could not offer 20,000 acknowledged publishes a
 * second next to the pipeline on 2 cores; the caller checks the rows in ClickHouse
 * instead. Every `sampleEvery`-th event is handed to `onSample` as it is sent.
 */
export async function offerAtRate(
  input: RateWorkerInput,
  onSample: (s: Sample) => void,
): Promise<RateResult> {
  const worker = new Worker(new URL("./rate-worker.ts", import.meta.url), { workerData: input });
  const result: RateResult = {
    ...emptyResult(),
    offeredPerSec: input.rate,
    maxBehind: 0,
    sendMs: 0,
    samples: [],
  };
  try {
    await new Promise<void>((resolve, reject) => {
      worker.on("message", (m: RateWorkerMessage) => {
        if (m.type === "sample") {
          const sample = { id: m.id, tenantId: m.tenantId, sentAtMs: m.sentAtMs };
          result.samples.push(sample);
          onSample(sample);
        } else if (m.type === "done") {
          result.published = m.sent;
          result.sendMs = m.sendMs;
          result.wallMs = m.wallMs;
          result.perSec = (m.sent / m.sendMs) * 1000;
          result.maxBehind = m.maxBehind;
          resolve();
        } else {
          reject(new Error(`rate worker: ${m.message}`));
        }
      });
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new Error(`rate worker exited with ${code}`)));
    });
  } finally {
    await worker.terminate();
  }
  return result;
}

/**
 * Publishes events 0..count-1 of `build` as fast as the server takes them: core
 * publishes with `Nats-Msg-Id`, a flush (round trip) every `chunk` events for
 * back-pressure. For backlogs whose rows the caller counts in ClickHouse afterwards.
 */
export async function publishFast(
  nc: NatsConnection,
  count: number,
  build: (i: number) => BenchMessage,
  chunk = 2000,
): Promise<PublishResult> {
  const result = emptyResult();
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const m = build(i);
    const h = headers();
    h.set("Nats-Msg-Id", m.id);
    nc.publish(m.subject, m.data, { headers: h });
    if ((i + 1) % chunk === 0) await nc.flush();
  }
  await nc.flush();
  result.published = count;
  result.wallMs = performance.now() - started;
  result.perSec = (count / result.wallMs) * 1000;
  return result;
}
