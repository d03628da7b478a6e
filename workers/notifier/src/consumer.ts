/**
 * The notifier's durable pull consumers on FULCRUM_EXECUTION_EVENTS: one per event type
 * a webhook can subscribe to (`notifier-budget_warning` on `fulcrum.events.*.budget_warning`,
 * …), so the notifier only ever receives governance events. One consumer per type rather
 * than one with `filter_subjects`: that needs nats-server 2.10, and the machines this
 * runs on locally have 2.9.
 *
 * Created with deliver policy `new`: a notifier started for the first time does not
 * notify the stream's history (up to a week of it). Set up again at every start and
 * whenever pulling fails (the stream or a consumer was deleted).
 */
import {
  AckPolicy,
  type ConsumerConfig,
  DeliverPolicy,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { nanos } from "@nats-io/nats-core";
import { type EventStreamSettings, ensureEventStreams } from "../../../core/audit/event-stream.js";
import { EVENTS_SUBJECT_PREFIX, eventTypeToken } from "../../../core/audit/event-subject.js";
import { WEBHOOK_EVENT_TYPES } from "../../../core/notifications/webhook-events.js";
import { ensureDurableConsumer } from "../../shared/durable-consumer.js";

export const CONSUMER_PREFIX = "notifier-";

export interface NotifierConsumer {
  name: string;
  config: Partial<ConsumerConfig>;
}

export function notifierConsumers(settings: { ackWaitMs: number; concurrency: number }) {
  return WEBHOOK_EVENT_TYPES.map((type): NotifierConsumer => {
    const token = eventTypeToken(type);
    const name = `${CONSUMER_PREFIX}${token}`;
    return {
      name,
      config: {
        durable_name: name,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
        filter_subject: `${EVENTS_SUBJECT_PREFIX}.*.${token}`,
        ack_wait: nanos(settings.ackWaitMs),
        // Retries are the notifier's (nak with its backoff; FAILED after six attempts),
        // so the server never gives up on a message by itself.
        max_deliver: -1,
        // Events waiting for a retry stay unacked: room for many of them.
        max_ack_pending: Math.max(1000, settings.concurrency * 64),
      },
    };
  });
}

/** Ensures the streams, then creates each consumer or updates what differs. */
export async function ensureNotifierConsumers(
  jsm: JetStreamManager,
  streams: EventStreamSettings,
  settings: { ackWaitMs: number; concurrency: number },
): Promise<NotifierConsumer[]> {
  await ensureEventStreams(jsm, streams);
  const consumers = notifierConsumers(settings);
  for (const { name, config } of consumers) await ensureDurableConsumer(jsm, name, config);
  return consumers;
}
