import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { toJson } from "@bufbuild/protobuf";
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { decodeEvent, EVENT_SCHEMA_HEADER } from "../../core/audit/event-codec.js";
import { EVENTS_STREAM } from "../../core/audit/event-subject.js";
import { EventSchema } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { TestNats } from "./nats-server.js";

/** One stored message as the control server reports it. */
export interface StoredEventMessage {
  seq: number;
  subject: string;
  msgId: string | undefined;
  schema: string | undefined;
  /** The decoded Event in proto JSON, or the decoder's reason. */
  event: Record<string, unknown> | { invalid: string };
}

/**
 * A small HTTP server for tests running inside workerd, which cannot reach Node: it
 * lets them stop and restart the tier's NATS and read the events stream back (over TCP,
 * independent of the Worker's WebSocket client).
 *
 * - `POST /pause`, `POST /resume`: stop / restart NATS (same ports and data);
 * - `POST /streams/delete`: delete the events stream (the runbook's fault);
 * - `GET /messages?subject=<filter>`: every stored message on the subject filter.
 */
export async function startNatsControlServer(
  nats: TestNats,
): Promise<{ url: string; close(): Promise<void> }> {
  const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 200 });
  const js = jetstream(nc);
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://control");
    const answer = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    handle(req.method ?? "GET", url)
      .then((body) => answer(200, body ?? {}))
      .catch((error: unknown) => answer(500, { error: String(error) }));
  });

  async function handle(method: string, url: URL): Promise<unknown> {
    if (method === "POST" && url.pathname === "/pause") return nats.pause();
    if (method === "POST" && url.pathname === "/resume") return nats.resume();
    if (method === "POST" && url.pathname === "/streams/delete") {
      const jsm = await jetstreamManager(nc);
      return { deleted: await jsm.streams.delete(EVENTS_STREAM) };
    }
    if (method === "GET" && url.pathname === "/messages") {
      return { messages: await messages(url.searchParams.get("subject") ?? ">") };
    }
    throw new Error(`no route ${method} ${url.pathname}`);
  }

  async function messages(subject: string): Promise<StoredEventMessage[]> {
    const jsm = await jetstreamManager(nc);
    const consumer = await jsm.consumers.add(EVENTS_STREAM, {
      filter_subject: subject,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
      inactive_threshold: 30_000_000_000,
    });
    try {
      const c = await js.consumers.get(EVENTS_STREAM, consumer.name);
      let pending = consumer.num_pending;
      const out: StoredEventMessage[] = [];
      while (pending > 0) {
        const batch = await c.fetch({ max_messages: Math.min(pending, 1000), expires: 2000 });
        let got = 0;
        for await (const m of batch) {
          got++;
          const decoded = decodeEvent(m.data);
          out.push({
            seq: m.seq,
            subject: m.subject,
            msgId: m.headers?.get("Nats-Msg-Id") || undefined,
            schema: m.headers?.get(EVENT_SCHEMA_HEADER) || undefined,
            event: decoded.ok
              ? (toJson(EventSchema, decoded.event) as Record<string, unknown>)
              : { invalid: decoded.reason },
          });
        }
        if (got === 0) break;
        pending -= got;
      }
      return out;
    } finally {
      await jsm.consumers.delete(EVENTS_STREAM, consumer.name).catch(() => {});
    }
  }

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await nc.close();
    },
  };
}
