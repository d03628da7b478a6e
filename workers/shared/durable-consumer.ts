/**
 * Creates a worker's durable consumer on FULCRUM_EXECUTION_EVENTS, or brings an existing
 * one up to date. Only what JetStream lets a consumer change in place is compared; its
 * filter and deliver policy are fixed at creation.
 */
import type { ConsumerConfig, JetStreamManager } from "@nats-io/jetstream";
import { EVENTS_STREAM } from "../../core/audit/event-subject.js";

export async function ensureDurableConsumer(
  jsm: JetStreamManager,
  name: string,
  wanted: Partial<ConsumerConfig>,
): Promise<void> {
  const existing = await jsm.consumers.info(EVENTS_STREAM, name).catch((error) => {
    if (/consumer not found/i.test(String(error)) || error?.name === "ConsumerNotFoundError") {
      return undefined;
    }
    throw error;
  });
  if (!existing) {
    await jsm.consumers.add(EVENTS_STREAM, wanted);
    return;
  }
  const updatable = ["ack_wait", "max_deliver", "max_ack_pending"] as const;
  if (updatable.some((key) => existing.config[key] !== wanted[key])) {
    await jsm.consumers.update(EVENTS_STREAM, name, {
      ack_wait: wanted.ack_wait,
      max_deliver: wanted.max_deliver,
      max_ack_pending: wanted.max_ack_pending,
    });
  }
}
