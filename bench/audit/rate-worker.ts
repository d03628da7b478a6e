/**
 * The lag phase's producer, in a worker thread: an event loop of its own, so neither
 * the offer nor the main thread's ClickHouse polling (which timestamps first sightings)
 * waits for the other. See {@link offerAtRate}.
 */
import { performance } from "node:perf_hooks";
import { parentPort, workerData } from "node:worker_threads";
import { headers } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { benchEvent, benchMessage } from "./events.js";

export interface RateWorkerInput {
  natsUrl: string;
  rate: number;
  durationMs: number;
  tenants: number;
  firstIndex: number;
  source: string;
  sampleEvery: number;
}

export type RateWorkerMessage =
  | { type: "sample"; id: string; tenantId: string; sentAtMs: number }
  | { type: "done"; sent: number; sendMs: number; wallMs: number; maxBehind: number }
  | { type: "error"; message: string };

async function run(input: RateWorkerInput): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error("rate-worker.ts runs as a worker thread");
  const nc = await connect({ servers: input.natsUrl, name: "bench-audit-rate" });
  try {
    const total = Math.round((input.rate * input.durationMs) / 1000);
    let sent = 0;
    let maxBehind = 0;
    const started = performance.now();
    while (sent < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * input.rate));
      maxBehind = Math.max(maxBehind, due - sent);
      while (sent < due) {
        const i = sent++;
        const sentAtMs = Date.now();
        const m = benchMessage(benchEvent(input.firstIndex + i, input.tenants), input.source);
        // Core publish with the dedup id: JetStream stores it like js.publish does, without
        // a PubAck round trip per event (the counts in ClickHouse prove nothing was lost).
        const h = headers();
        h.set("Nats-Msg-Id", m.id);
        nc.publish(m.subject, m.data, { headers: h });
        if (i % input.sampleEvery === 0) {
          port.postMessage({ type: "sample", id: m.id, tenantId: m.tenantId, sentAtMs });
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const sendMs = performance.now() - started;
    // A round trip: everything before it has reached the server.
    await nc.flush();
    const message: RateWorkerMessage = {
      type: "done",
      sent,
      sendMs,
      wallMs: performance.now() - started,
      maxBehind,
    };
    port.postMessage(message);
  } finally {
    await nc.close();
  }
}

if (parentPort) {
  run(workerData as RateWorkerInput).catch((error: unknown) => {
    parentPort?.postMessage({ type: "error", message: String(error) });
  });
}
