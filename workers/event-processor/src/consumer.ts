/**
 * The processor's durable pull consumer on FULCRUM_EXECUTION_EVENTS, created or brought
 * up to date at every start (and after the stream or consumer was deleted).
 */
import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import { type EventStreamSettings, ensureEventStreams } from "../../../core/audit/event-stream.js";
import { EVENTS_SUBJECT_PREFIX } from "../../../core/audit/event-subject.js";
import { ensureDurableConsumer } from "../../shared/durable-consumer.js";

export const CONSUMER_NAME = "event-processor";

export interface ConsumerSettings {
  ackWaitMs: number;
  batchMaxEvents: number;
  batchConcurrency: number;
}

export function consumerConfig(settings: ConsumerSettings): Partial<ConsumerConfig> {
  return {
    durable_name: CONSUMER_NAME,
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    filter_subject: `${EVENTS_SUBJECT_PREFIX}.>`,
    ack_wait: nanos(settings.ackWaitMs),
    // The processor dead-letters by itself (it knows why a delivery failed), so the
    // server must never stop redelivering on its own.
    max_deliver: -1,
    // The batches being stored plus the one filling.
    max_ack_pending: settings.batchMaxEvents * (settings.batchConcurrency + 1),
    max_batch: 0,
  };
}

/** Ensures the streams, then creates the consumer or updates what differs. */
export async function ensureConsumer(
  jsm: JetStreamManager,
  streams: EventStreamSettings,
  settings: ConsumerSettings,
): Promise<void> {
  await ensureEventStreams(jsm, streams);
  await ensureDurableConsumer(jsm, CONSUMER_NAME, consumerConfig(settings));
}
