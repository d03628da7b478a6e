/**
 * The request a delivery sends: the JSON body (the same bytes on every attempt) and its
 * headers, signed with the webhook's secret at the moment of the attempt (a retry gets a
 * fresh timestamp, so it stays within a receiver's 5-minute tolerance).
 */
import { SIGNATURE_HEADER, signWebhook } from "../../../core/notifications/webhook-signature.js";

export interface SignedRequest {
  body: string;
  headers: Record<string, string>;
}

export async function signedRequest(input: {
  secret: string;
  body: string;
  eventId: string;
  eventType: string;
  deliveryId: string;
  attempt: number;
  nowMs: number;
}): Promise<SignedRequest> {
  const signature = await signWebhook(input.secret, input.body, Math.floor(input.nowMs / 1000));
  return {
    body: input.body,
    headers: {
      "content-type": "application/json",
      "user-agent": "fulcrum-notifier/1",
      [SIGNATURE_HEADER]: signature,
      // The event id is the receiver's deduplication key: a retry carries the same one.
      "Fulcrum-Event-Id": input.eventId,
      "Fulcrum-Event-Type": input.eventType,
      "Fulcrum-Delivery-Id": input.deliveryId,
      "Fulcrum-Delivery-Attempt": String(input.attempt),
    },
  };
}
