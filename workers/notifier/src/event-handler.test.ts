import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { encodeEvent, newEvent } from "../../../core/audit/event-codec.js";
import { uuidv7 } from "../../../core/ids/uuidv7.js";
import { EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { AttemptResult } from "./deliver.js";
import { eventHandler, MAX_ATTEMPTS, retryDelayMs } from "./event-handler.js";
import { createNotifierMetrics } from "./metrics.js";
import type { Claim, NotifierStore, WebhookTarget } from "./store.js";

const tenantId = crypto.randomUUID();

/** The store's contract in memory: one delivery per (webhook, event). */
function memoryStore(hooks: WebhookTarget[]) {
  const rows = new Map<string, { status: string; attempts: number; dueAt: number }>();
  const store: NotifierStore = {
    enabledWebhooks: async () => hooks,
    async claim(_t, webhookId, event): Promise<Claim> {
      const key = `${webhookId}/${event.id}`;
      const row = rows.get(key) ?? { status: "PENDING", attempts: 0, dueAt: 0 };
      rows.set(key, row);
      if (row.status !== "PENDING") return { kind: "done" };
      if (row.dueAt > Date.now()) return { kind: "later", inMs: row.dueAt - Date.now() };
      return { kind: "claimed", deliveryId: key, attempts: row.attempts };
    },
    async record(_t, deliveryId, attempt, retryInMs) {
      const row = rows.get(deliveryId);
      if (!row) throw new Error("no row");
      row.attempts += 1;
      row.status = attempt.ok ? "DELIVERED" : retryInMs === undefined ? "FAILED" : "PENDING";
      row.dueAt = Date.now() + (retryInMs ?? 0);
    },
  };
  return { store, rows };
}

function message(type = EventType.BUDGET_WARNING) {
  const settled: string[] = [];
  const event = newEvent({
    eventId: uuidv7(),
    tenantId,
    executionId: "x",
    eventType: type,
    timestamp: timestampFromMs(Date.now()),
  });
  return {
    settled,
    msg: {
      data: encodeEvent(event),
      info: { deliveryCount: 1 },
      ack: () => settled.push("ack"),
      nak: (ms?: number) => settled.push(`nak:${ms}`),
    },
  };
}

const hook = (id: string, eventTypes: string[] = []): WebhookTarget => ({
  id,
  url: `https://example.com/${id}`,
  secret: "whsec_0123456789abcdef",
  eventTypes,
});

function handler(store: NotifierStore, answers: AttemptResult[]) {
  const calls: string[] = [];
  const handle = eventHandler({
    store,
    deliver: async (url) => {
      calls.push(url);
      return answers.shift() ?? { ok: true, statusCode: 200 };
    },
    metrics: createNotifierMetrics(),
    logger: { info: () => {}, error: () => {} },
    backoffScale: 1,
    leaseMs: 40_000,
  });
  return { handle, calls };
}

describe("retry schedule", () => {
  it("waits 1 s, 5 s, 30 s, 2 min, 10 min, then gives up after six attempts", () => {
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(n))).toEqual([
      1000, 5000, 30_000, 120_000, 600_000,
    ]);
    expect(MAX_ATTEMPTS).toBe(6);
    expect(retryDelayMs(6)).toBeUndefined();
    expect(retryDelayMs(2, 0.01)).toBe(50);
  });
});

describe("event handler", () => {
  it("acks after delivering to the webhooks that want the type, and only those", async () => {
    const { store, rows } = memoryStore([
      hook("a"),
      hook("b", ["BUDGET_WARNING"]),
      hook("c", ["APPROVAL_REQUESTED"]),
    ]);
    const { handle, calls } = handler(store, []);
    const { msg, settled } = message();
    await handle(msg);
    expect(calls.sort()).toEqual(["https://example.com/a", "https://example.com/b"]);
    expect(settled).toEqual(["ack"]);
    expect([...rows.values()].map((r) => r.status)).toEqual(["DELIVERED", "DELIVERED"]);
    // Redelivered: nothing is sent again.
    await handle(msg);
    expect(calls).toHaveLength(2);
  });

  it("naks with the backoff after a failure, and acks once FAILED", async () => {
    const { store, rows } = memoryStore([hook("a")]);
    const fail: AttemptResult = {
      ok: false,
      statusCode: 500,
      error: "HTTP 500",
      kind: "http_error",
    };
    const { handle } = handler(store, []);
    const { msg, settled } = message();
    const failing = eventHandler({
      store,
      deliver: async () => fail,
      metrics: createNotifierMetrics(),
      logger: { info: () => {}, error: () => {} },
      backoffScale: 0.0001,
      leaseMs: 40_000,
    });
    for (let i = 0; i < MAX_ATTEMPTS; i++) {
      await new Promise((r) => setTimeout(r, 100));
      await failing(msg);
    }
    expect(settled.slice(0, 5).every((s) => s.startsWith("nak:"))).toBe(true);
    expect(settled[5]).toBe("ack");
    expect([...rows.values()][0]).toMatchObject({ status: "FAILED", attempts: 6 });
    await handle(msg);
    expect(settled[6]).toBe("ack");
  });

  it("acks events with no webhooks and malformed ones; naks when PostgreSQL fails", async () => {
    const { handle } = handler(memoryStore([]).store, []);
    const none = message();
    await handle(none.msg);
    expect(none.settled).toEqual(["ack"]);
    const broken = { ...message().msg, data: new Uint8Array([1, 2, 3]) };
    const brokenSettled: string[] = [];
    await handle({ ...broken, ack: () => brokenSettled.push("ack") });
    expect(brokenSettled).toEqual(["ack"]);
    const down = eventHandler({
      store: {
        ...memoryStore([]).store,
        enabledWebhooks: async () => {
          throw new Error("connection refused");
        },
      },
      deliver: async () => ({ ok: true, statusCode: 200 }),
      metrics: createNotifierMetrics(),
      logger: { info: () => {}, error: () => {} },
      backoffScale: 1,
      leaseMs: 40_000,
    });
    const m = message();
    await down(m.msg);
    expect(m.settled).toEqual(["nak:1000"]);
  });
});
