/**
 * Parks a message the processor cannot store on `fulcrum.deadletter.<tenant>.<type>`
 * (stream FULCRUM_DEAD_LETTERS), with the original bytes and headers saying why, so a
 * person can inspect and replay it. The publish is deduplicated on the original stream
 * sequence, so a crash between the publish and the ack does not park it twice.
 */
import type { JetStreamClient } from "@nats-io/jetstream";
import { headers } from "@nats-io/nats-core";
import { deadLetterSubject } from "../../../core/audit/event-subject.js";
import type { DeadLetterCategory, InboundMessage } from "./batch.js";

export const DEAD_LETTER_HEADERS = {
  reason: "Fulcrum-Dead-Letter-Reason",
  category: "Fulcrum-Dead-Letter-Category",
  subject: "Fulcrum-Original-Subject",
  sequence: "Fulcrum-Stream-Sequence",
  deliveries: "Fulcrum-Delivery-Count",
} as const;

/** Header values are one line of printable ASCII. */
function headerValue(value: string): string {
  return value.replace(/[^\x20-\x7e]+/g, " ").slice(0, 512);
}

export function deadLetterPublisher(js: JetStreamClient, timeoutMs = 5000) {
  return async (message: InboundMessage, category: DeadLetterCategory, reason: string) => {
    const h = headers();
    h.set(DEAD_LETTER_HEADERS.reason, headerValue(reason));
    h.set(DEAD_LETTER_HEADERS.category, category);
    h.set(DEAD_LETTER_HEADERS.subject, headerValue(message.subject));
    h.set(DEAD_LETTER_HEADERS.sequence, String(message.seq));
    h.set(DEAD_LETTER_HEADERS.deliveries, String(message.info.deliveryCount));
    await js.publish(deadLetterSubject(message.subject), message.data, {
      headers: h,
      msgID: `dead-letter-${message.seq}`,
      timeout: timeoutMs,
    });
  };
}
