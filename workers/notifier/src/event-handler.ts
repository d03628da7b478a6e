/**
 * One governance event, from message to recorded deliveries: the tenant's enabled
 * webhooks that want its type each get the signed POST (concurrently), every attempt is
 * recorded, and only then is the message settled — acked when every delivery is
 * DELIVERED or FAILED, naked with the earliest retry's delay otherwise. The JetStream
 * message is the retry timer; PostgreSQL holds the state, so a redelivered message (a
 * crash, a duplicate publish) never POSTs a delivery that is already done.
 */
import { decodeEvent } from "../../../core/audit/event-codec.js";
import { eventTypeName } from "../../../core/audit/event-subject.js";
import { isUuid } from "../../../core/ids/uuid.js";
import type { Logger } from "../../../core/logging/logger.js";
import {
  isWebhookEventType,
  webhookBody,
  webhookWants,
} from "../../../core/notifications/webhook-events.js";
import type { Metrics } from "../../../core/observability/metrics.js";
import type { Event } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import type { AttemptResult } from "./deliver.js";
import { M } from "./metrics.js";
import { signedRequest } from "./sign.js";
import type { NotifierStore, WebhookTarget } from "./store.js";

/** Waits after failed attempts 1…5; the sixth failure is final. */
export const BACKOFF_MS = [1000, 5000, 30_000, 120_000, 600_000] as const;
export const MAX_ATTEMPTS = BACKOFF_MS.length + 1;

/** The wait before the next attempt after `attemptsMade` failed ones; undefined: give up. */
export function retryDelayMs(attemptsMade: number, scale = 1): number | undefined {
  if (attemptsMade >= MAX_ATTEMPTS) return undefined;
  const base = BACKOFF_MS[Math.min(BACKOFF_MS.length, Math.max(1, attemptsMade)) - 1] ?? 1000;
  return Math.max(1, Math.round(base * scale));
}

/** The part of a JetStream message (JsMsg) the handler uses. */
export interface NotifierMessage {
  data: Uint8Array;
  info: { deliveryCount: number };
  ack(): void;
  nak(millis?: number): void;
}

export interface HandlerDeps {
  store: NotifierStore;
  deliver(
    url: string,
    request: { body: string; headers: Record<string, string> },
  ): Promise<AttemptResult>;
  metrics: Metrics;
  logger: Logger;
  backoffScale: number;
  /** How long a claimed attempt holds its delivery (longer than one attempt can take). */
  leaseMs: number;
  now?: () => number;
}

type Settled = { done: true } | { done: false; inMs: number };

/** Retry delay when PostgreSQL itself failed: 1 s doubling per delivery, at most 60 s. */
function storeRetryMs(deliveryCount: number): number {
  return Math.min(60_000, 1000 * 2 ** Math.min(6, Math.max(0, deliveryCount - 1)));
}

export function eventHandler(deps: HandlerDeps) {
  const { store, metrics, logger } = deps;
  const now = deps.now ?? Date.now;

  const deliverTo = async (event: Event, hook: WebhookTarget, body: string): Promise<Settled> => {
    const type = eventTypeName(event.eventType);
    const claim = await store.claim(
      event.tenantId,
      hook.id,
      { id: event.eventId, type },
      deps.leaseMs,
    );
    if (claim.kind === "done") return { done: true };
    if (claim.kind === "later") return { done: false, inMs: claim.inMs };
    const attempt = claim.attempts + 1;
    const request = await signedRequest({
      secret: hook.secret,
      body,
      eventId: event.eventId,
      eventType: type,
      deliveryId: claim.deliveryId,
      attempt,
      nowMs: now(),
    });
    const started = performance.now();
    const result = await deps.deliver(hook.url, request);
    metrics.observe(M.attemptSeconds, (performance.now() - started) / 1000);
    metrics.increment(M.attempts, { result: result.ok ? "2xx" : result.kind });
    const retryInMs = result.ok ? undefined : retryDelayMs(attempt, deps.backoffScale);
    await store.record(
      event.tenantId,
      claim.deliveryId,
      { ok: result.ok, statusCode: result.statusCode, error: result.ok ? undefined : result.error },
      retryInMs,
    );
    if (result.ok) {
      metrics.increment(M.delivered);
      return { done: true };
    }
    logger.info("webhook attempt failed", {
      webhookId: hook.id,
      deliveryId: claim.deliveryId,
      eventId: event.eventId,
      attempt,
      statusCode: result.statusCode,
      error: result.error,
      retryInMs,
    });
    if (retryInMs === undefined) {
      metrics.increment(M.failed);
      return { done: true };
    }
    return { done: false, inMs: retryInMs };
  };

  return async (message: NotifierMessage): Promise<void> => {
    const decoded = decodeEvent(message.data);
    // Malformed events are the processor's to dead-letter; there is nothing to notify.
    if (
      !decoded.ok ||
      !isWebhookEventType(decoded.event.eventType) ||
      !isUuid(decoded.event.tenantId)
    ) {
      metrics.increment(M.events, { outcome: "skipped" });
      message.ack();
      return;
    }
    const event = decoded.event;
    let hooks: WebhookTarget[];
    try {
      hooks = (await store.enabledWebhooks(event.tenantId)).filter((h) =>
        webhookWants(h.eventTypes, event.eventType),
      );
    } catch (error) {
      metrics.increment(M.errors, { where: "postgres" });
      logger.error("reading webhooks failed; retrying", { eventId: event.eventId, error });
      message.nak(storeRetryMs(message.info.deliveryCount));
      return;
    }
    if (hooks.length === 0) {
      metrics.increment(M.events, { outcome: "no_webhooks" });
      message.ack();
      return;
    }
    const body = JSON.stringify(webhookBody(event));
    const settled = await Promise.all(
      hooks.map((hook) =>
        deliverTo(event, hook, body).catch((error: unknown): Settled => {
          metrics.increment(M.errors, { where: "delivery" });
          logger.error("recording a delivery failed; retrying", {
            webhookId: hook.id,
            eventId: event.eventId,
            error,
          });
          return { done: false, inMs: storeRetryMs(message.info.deliveryCount) };
        }),
      ),
    );
    const waits = settled.flatMap((s) => (s.done ? [] : [s.inMs]));
    if (waits.length === 0) {
      metrics.increment(M.events, { outcome: "settled" });
      message.ack();
      return;
    }
    metrics.increment(M.events, { outcome: "retrying" });
    // The earliest retry that is due; a delivery not due yet simply waits another round.
    message.nak(Math.max(50, Math.min(...waits)));
  };
}
