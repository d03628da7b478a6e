/**
 * Webhooks end to end over the real stack: WebhookService (admins only, URLs checked,
 * the secret shown once) and the notifier in-process against a NATS of the test's own,
 * PostgreSQL through the Neon proxy and a local HTTP receiver. A governance event reaches
 * every webhook that wants it exactly once, signed so core/notifications verifies it;
 * failures are retried with backoff and every attempt is recorded; a redelivered event is
 * never delivered twice.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeEvent, newEvent } from "../../core/audit/event-codec.js";
import { DEFAULT_EVENT_STREAM_SETTINGS } from "../../core/audit/event-stream.js";
import { eventSubject } from "../../core/audit/event-subject.js";
import { uuidv7 } from "../../core/ids/uuidv7.js";
import { verifyWebhookSignature } from "../../core/notifications/webhook-signature.js";
import {
  BudgetInfoSchema,
  type Event,
  EventType,
} from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import {
  DeliveryStatus,
  WebhookService,
} from "../../proto/gen/fulcrum/notification/v1/webhook_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import type { NotifierConfig } from "../../workers/notifier/src/config.js";
import { M } from "../../workers/notifier/src/metrics.js";
import { type Notifier, startNotifier } from "../../workers/notifier/src/notifier.js";
import { eventually, producer, publishEvents, sleep } from "../harness/event-processor.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { auditRows, expectCode, userWithKey } from "../harness/management-helpers.js";
import { startTestNats, type TestNats } from "../harness/nats-server.js";
import { startWebhookReceiver, type WebhookReceiver } from "../harness/webhook-receiver.js";

const streams = DEFAULT_EVENT_STREAM_SETTINGS;
let nats: TestNats;
let stack: FunctionsStack;
let receiver: WebhookReceiver;
let notifier: Notifier;
let pub: Awaited<ReturnType<typeof producer>>;
type Tenant = Awaited<ReturnType<FunctionsStack["createTenant"]>>;
let tenant: Tenant;
let other: Tenant;
const hooks = (key: string) => stack.client(WebhookService, key);

beforeAll(async () => {
  nats = await startTestNats();
  stack = await startFunctionsStack(undefined, { natsUrl: nats.url });
  receiver = await startWebhookReceiver();
  pub = await producer(nats.url, streams);
  const config: NotifierConfig = {
    natsUrl: nats.url,
    databaseUrl: stack.config.databaseUrl,
    pgWsProxyPort: stack.proxy.port,
    http: { host: "127.0.0.1", port: 0 },
    concurrency: 4,
    requestTimeoutMs: 2000,
    ackWaitMs: 10_000,
    // 1 s, 5 s, 30 s, 2 min, 10 min become 2, 10, 60, 240, 1200 ms.
    backoffScale: 0.002,
    allowPrivateWebhooks: true,
    statsIntervalMs: 250,
    streams,
  };
  notifier = await startNotifier(config, { info: () => {}, error: () => {} });
  await notifier.ready;
  tenant = await stack.createTenant();
  other = await stack.createTenant();
}, 120_000);
afterAll(async () => {
  await notifier?.stop();
  await pub?.close();
  await receiver?.close();
  await stack?.stop();
  await nats?.stop();
});

function budgetWarning(tenantId: string): Event {
  const now = Date.now();
  return newEvent({
    eventId: uuidv7(now),
    tenantId,
    executionId: "budget-check",
    eventType: EventType.BUDGET_WARNING,
    timestamp: timestampFromMs(now),
    source: "fulcrum-functions",
    details: {
      case: "budget",
      value: create(BudgetInfoSchema, {
        budgetId: crypto.randomUUID(),
        thresholdPercent: 80,
        usagePercent: 81.5,
        spentUsd: 8.15,
        limitUsd: 10,
      }),
    },
  });
}

const deliveryRows = async (eventId: string) =>
  (
    await stack.owner.query(
      "SELECT webhook_id, status, attempts, last_status_code, last_error FROM webhook_deliveries WHERE event_id = $1",
      [eventId],
    )
  ).rows;

describe("WebhookService", () => {
  it("creates a webhook, shows its secret once and lists it without", async () => {
    const api = hooks(tenant.adminKey);
    const res = await api.createWebhook({
      url: `${receiver.url}/crud`,
      eventTypes: [EventType.BUDGET_EXCEEDED, EventType.APPROVAL_REQUESTED],
      description: "on-call",
    });
    expect(res.signingSecret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    expect(res.webhook).toMatchObject({
      url: `${receiver.url}/crud`,
      eventTypes: [EventType.BUDGET_EXCEEDED, EventType.APPROVAL_REQUESTED],
      description: "on-call",
      enabled: true,
    });
    const id = res.webhook?.webhookId as string;
    const listed = await api.listWebhooks({});
    expect(listed.webhooks.map((w) => w.webhookId)).toContain(id);
    const text = JSON.stringify(listed, (_k, v) => (typeof v === "bigint" ? String(v) : v));
    expect(text).not.toContain(res.signingSecret);
    const { rows } = await stack.owner.query("SELECT secret FROM webhooks WHERE id = $1", [id]);
    expect(rows).toEqual([{ secret: res.signingSecret }]);
    const [audit] = await auditRows(stack, tenant.tenantId, id);
    expect(audit).toMatchObject({ action: "webhook.created", target_type: "webhook" });
    expect(JSON.stringify(audit)).not.toContain(res.signingSecret);

    // Another tenant neither sees nor deletes it.
    expect((await hooks(other.adminKey).listWebhooks({})).webhooks).toEqual([]);
    await expectCode(hooks(other.adminKey).deleteWebhook({ webhookId: id }), Code.NotFound);
    await api.deleteWebhook({ webhookId: id });
    await expectCode(api.deleteWebhook({ webhookId: id }), Code.NotFound, /not found/);
  });

  it("refuses bad URLs, private hosts (unless allowed) and types webhooks cannot get", async () => {
    const api = hooks(tenant.adminKey);
    await expectCode(
      api.createWebhook({ url: "ftp://example.com/hook" }),
      Code.InvalidArgument,
      /http:\/\/ or https:\/\//,
    );
    await expectCode(
      api.createWebhook({
        url: "https://example.com/x",
        eventTypes: [EventType.LLM_CALL_COMPLETED],
      }),
      Code.InvalidArgument,
      /event_types\[0\].*cannot be sent to a webhook/,
    );
    stack.deps.allowPrivateWebhooks = false;
    try {
      for (const url of ["http://127.0.0.1:9/x", "http://169.254.169.254/", "http://localhost/"]) {
        await expectCode(api.createWebhook({ url }), Code.InvalidArgument, /private or internal/);
      }
      const ok = await api.createWebhook({ url: "https://hooks.example.com/fulcrum" });
      await api.deleteWebhook({ webhookId: ok.webhook?.webhookId as string });
    } finally {
      stack.deps.allowPrivateWebhooks = true;
    }
  });

  it("is for admins only", async () => {
    const viewer = await userWithKey(stack, tenant.adminKey, UserRole.VIEWER);
    const author = await userWithKey(stack, tenant.adminKey, UserRole.POLICY_AUTHOR);
    for (const key of [viewer.key, author.key]) {
      await expectCode(hooks(key).listWebhooks({}), Code.PermissionDenied);
      await expectCode(
        hooks(key).createWebhook({ url: `${receiver.url}/x` }),
        Code.PermissionDenied,
      );
      await expectCode(hooks(key).listWebhookDeliveries({}), Code.PermissionDenied);
    }
  });
});

describe("notifier", () => {
  it("delivers a budget warning once to each webhook that wants it, signed", async () => {
    const api = hooks(tenant.adminKey);
    const byDefault = await api.createWebhook({ url: `${receiver.url}/default` });
    const explicit = await api.createWebhook({
      url: `${receiver.url}/explicit`,
      eventTypes: [EventType.BUDGET_WARNING],
    });
    const approvalsOnly = await api.createWebhook({
      url: `${receiver.url}/approvals`,
      eventTypes: [EventType.APPROVAL_REQUESTED],
    });
    await hooks(other.adminKey).createWebhook({ url: `${receiver.url}/other-tenant` });

    const event = budgetWarning(tenant.tenantId);
    await publishEvents(pub.js, [event]);
    await eventually("both delivered", async () => {
      const rows = await deliveryRows(event.eventId);
      return rows.length === 2 && rows.every((r) => r.status === "DELIVERED");
    });

    for (const [path, created] of [
      ["/default", byDefault],
      ["/explicit", explicit],
    ] as const) {
      const got = receiver.on(path);
      expect(got).toHaveLength(1);
      const request = got[0];
      if (!request) throw new Error("no request");
      const check = await verifyWebhookSignature(
        created.signingSecret,
        request.body,
        request.headers["fulcrum-signature"] as string,
      );
      expect(check.ok).toBe(true);
      // Any other secret fails.
      const wrong = await verifyWebhookSignature(
        byDefault === created ? explicit.signingSecret : byDefault.signingSecret,
        request.body,
        request.headers["fulcrum-signature"] as string,
      );
      expect(wrong.ok).toBe(false);
      expect(request.headers["fulcrum-event-id"]).toBe(event.eventId);
      expect(JSON.parse(request.body)).toMatchObject({
        event_id: event.eventId,
        type: "BUDGET_WARNING",
        tenant_id: tenant.tenantId,
        data: { budget: { threshold_percent: 80, usage_percent: 81.5, limit_usd: 10 } },
      });
    }
    expect(receiver.on("/approvals")).toHaveLength(0);
    expect(receiver.on("/other-tenant")).toHaveLength(0);
    const rows = await deliveryRows(event.eventId);
    expect(rows.map((r) => r.webhook_id).sort()).toEqual(
      [byDefault.webhook?.webhookId, explicit.webhook?.webhookId].sort(),
    );
    expect(rows.every((r) => r.attempts === 1 && r.last_status_code === 200)).toBe(true);
    expect(approvalsOnly.webhook?.webhookId).not.toBe(rows[0]?.webhook_id);

    const listed = await api.listWebhookDeliveries({
      webhookId: explicit.webhook?.webhookId as string,
    });
    expect(listed.deliveries).toHaveLength(1);
    expect(listed.deliveries[0]).toMatchObject({
      eventId: event.eventId,
      eventType: EventType.BUDGET_WARNING,
      status: DeliveryStatus.DELIVERED,
      attempts: 1,
      lastStatusCode: 200,
    });

    // The same event again as a new stream message (a producer re-publishing after the
    // duplicate window, simulated with another message id): no new POST.
    const settledBefore = notifier.metrics.value(M.events, { outcome: "settled" });
    await pub.js.publish(eventSubject(event.tenantId, event.eventType), encodeEvent(event), {
      msgID: `${event.eventId}-again`,
    });
    await eventually(
      "redelivery settled",
      async () => notifier.metrics.value(M.events, { outcome: "settled" }) > settledBefore,
    );
    expect(receiver.on("/default")).toHaveLength(1);
    expect(receiver.on("/explicit")).toHaveLength(1);
    expect(await deliveryRows(event.eventId)).toHaveLength(2);

    for (const w of [byDefault, explicit, approvalsOnly]) {
      await api.deleteWebhook({ webhookId: w.webhook?.webhookId as string });
    }
  });

  it("retries with backoff: delivered on the third attempt, attempts recorded", async () => {
    const api = hooks(other.adminKey);
    for (const w of (await api.listWebhooks({})).webhooks) {
      await api.deleteWebhook({ webhookId: w.webhookId });
    }
    receiver.plan("/flaky", [500, 503, 200]);
    const flaky = await api.createWebhook({ url: `${receiver.url}/flaky` });
    const event = budgetWarning(other.tenantId);
    await publishEvents(pub.js, [event]);
    await eventually("delivered on attempt 3", async () => {
      const [row] = await deliveryRows(event.eventId);
      return row?.status === "DELIVERED";
    });
    const [row] = await deliveryRows(event.eventId);
    expect(row).toMatchObject({ attempts: 3, last_status_code: 200, last_error: null });
    const got = receiver.on("/flaky");
    expect(got.map((r) => r.headers["fulcrum-delivery-attempt"])).toEqual(["1", "2", "3"]);
    expect(new Set(got.map((r) => r.body)).size).toBe(1);
    // Waited between attempts (2 ms, then 10 ms at this scale).
    expect((got[2]?.receivedAt ?? 0) - (got[0]?.receivedAt ?? 0)).toBeGreaterThanOrEqual(10);
    await api.deleteWebhook({ webhookId: flaky.webhook?.webhookId as string });
  });

  it("gives up after six attempts and records FAILED with the last error", async () => {
    const api = hooks(other.adminKey);
    receiver.plan("/down", [500]);
    const down = await api.createWebhook({ url: `${receiver.url}/down` });
    const event = budgetWarning(other.tenantId);
    await publishEvents(pub.js, [event]);
    await eventually(
      "failed",
      async () => (await deliveryRows(event.eventId))[0]?.status === "FAILED",
      30_000,
    );
    const [row] = await deliveryRows(event.eventId);
    expect(row).toMatchObject({ attempts: 6, last_status_code: 500 });
    expect(row?.last_error).toMatch(/^HTTP 500/);
    expect(receiver.on("/down")).toHaveLength(6);
    const failed = await api.listWebhookDeliveries({ status: DeliveryStatus.FAILED });
    expect(failed.deliveries.map((d) => d.eventId)).toEqual([event.eventId]);
    await sleep(300);
    expect(receiver.on("/down")).toHaveLength(6);
    await api.deleteWebhook({ webhookId: down.webhook?.webhookId as string });
  });
});
