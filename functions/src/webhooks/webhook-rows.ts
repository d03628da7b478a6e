/**
 * Webhooks between the API and PostgreSQL: request validation (URL, event types), the
 * signing secret, and rows to proto messages. Reads never select `secret`
 * (`webhookColumns`): it is shown once, in the CreateWebhook response.
 */
import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { eventTypeFromName, eventTypeName } from "../../../core/audit/event-subject.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import {
  isWebhookEventType,
  WEBHOOK_EVENT_TYPES,
} from "../../../core/notifications/webhook-events.js";
import { webhookUrlProblem } from "../../../core/notifications/webhook-url.js";
import { type webhookDeliveries, webhooks } from "../../../db/schema/index.js";
import { EventType } from "../../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import {
  DeliveryStatus,
  type Webhook,
  type WebhookDelivery,
  WebhookDeliverySchema,
  WebhookSchema,
} from "../../../proto/gen/fulcrum/notification/v1/webhook_pb.js";

/** Every column but the secret. */
export const webhookColumns = {
  id: webhooks.id,
  url: webhooks.url,
  eventTypes: webhooks.eventTypes,
  description: webhooks.description,
  enabled: webhooks.enabled,
  createdAt: webhooks.createdAt,
};
export type WebhookRow = { [K in keyof typeof webhookColumns]: (typeof webhooks.$inferSelect)[K] };
export type DeliveryRow = typeof webhookDeliveries.$inferSelect;

/** `whsec_` + 32 random bytes (base64url): the HMAC key, shown once. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString("base64url")}`;
}

/** @throws FulcrumError Invalid (field url) naming what is wrong with it. */
export function checkWebhookUrl(url: string, allowPrivate: boolean): string {
  const problem = webhookUrlProblem(url, allowPrivate);
  if (problem) throw new FulcrumError("Invalid", problem, { field: "url" });
  return url;
}

/** The stored names of the requested types; each must be one a webhook can receive. */
export function eventTypeNames(types: readonly EventType[]): string[] {
  return types.map((type, i) => {
    if (!isWebhookEventType(type)) {
      const allowed = WEBHOOK_EVENT_TYPES.map((t) => `EVENT_TYPE_${eventTypeName(t)}`).join(", ");
      throw new FulcrumError(
        "Invalid",
        `event_types[${i}]: ${EventType[type] ? `EVENT_TYPE_${EventType[type]}` : type} cannot be sent to a webhook; choose from ${allowed}`,
        { field: `event_types[${i}]` },
      );
    }
    return eventTypeName(type);
  });
}

export function toWebhookProto(row: WebhookRow): Webhook {
  return create(WebhookSchema, {
    webhookId: row.id,
    url: row.url,
    eventTypes: row.eventTypes.flatMap((name) => eventTypeFromName(name) ?? []),
    description: row.description,
    enabled: row.enabled,
    createdAt: timestampFromDate(row.createdAt),
  });
}

const STATUS_TO_PROTO: Record<DeliveryRow["status"], DeliveryStatus> = {
  PENDING: DeliveryStatus.PENDING,
  DELIVERED: DeliveryStatus.DELIVERED,
  FAILED: DeliveryStatus.FAILED,
};

export function deliveryStatusName(status: DeliveryStatus): DeliveryRow["status"] | undefined {
  const entry = Object.entries(STATUS_TO_PROTO).find(([, value]) => value === status);
  return entry?.[0] as DeliveryRow["status"] | undefined;
}

export function toDeliveryProto(row: DeliveryRow): WebhookDelivery {
  return create(WebhookDeliverySchema, {
    deliveryId: row.id,
    webhookId: row.webhookId,
    eventId: row.eventId,
    eventType: eventTypeFromName(row.eventType) ?? EventType.UNSPECIFIED,
    status: STATUS_TO_PROTO[row.status],
    attempts: row.attempts,
    lastStatusCode: row.lastStatusCode ?? 0,
    lastError: row.lastError ?? "",
    ...(row.nextAttemptAt && row.status === "PENDING"
      ? { nextAttemptAt: timestampFromDate(row.nextAttemptAt) }
      : {}),
    ...(row.deliveredAt ? { deliveredAt: timestampFromDate(row.deliveredAt) } : {}),
    createdAt: timestampFromDate(row.createdAt),
  });
}
