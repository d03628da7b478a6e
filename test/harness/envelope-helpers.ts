import { create } from "@bufbuild/protobuf";
import { type Duration, DurationSchema } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { type EnvelopeRecord, parseEnvelopeRecord } from "../../core/budget/budget-keys.js";
import type { Envelope, EnvelopeStatus } from "../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";
import { EnvelopeService } from "../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import type { Event } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { type FunctionsStack, startFunctionsStack } from "./functions-stack.js";
import { tenantEvents } from "./jetstream-events.js";
import { startTestNats, type TestNats } from "./nats-server.js";

type Tenant = Awaited<ReturnType<FunctionsStack["createTenant"]>>;

/**
 * EnvelopeService tests' setup: the functions stack on a NATS of the test's own, one
 * tenant (and another, for isolation), and short forms of the calls they repeat.
 */
export interface EnvelopeKit {
  nats: TestNats;
  nc: NatsConnection;
  stack: FunctionsStack;
  tenant: Tenant;
  other: Tenant;
  api: Client<typeof EnvelopeService>;
  /** CreateEnvelope (workflow `wf-env` unless given), answering the envelope. */
  open(init?: Parameters<Client<typeof EnvelopeService>["createEnvelope"]>[0]): Promise<Envelope>;
  move(id: string, status: EnvelopeStatus, reason?: string): Promise<Envelope>;
  /** The edge's record of an envelope in Redis, parsed as the edge does; null when absent. */
  record(id: string, tenantId?: string): Promise<EnvelopeRecord | null>;
  /** The envelope's events on the stream, waiting until `count` are there (or `ms`). */
  eventsOf(id: string, count: number, ms?: number): Promise<Event[]>;
  stop(): Promise<void>;
}

export const seconds = (s: number): Duration => create(DurationSchema, { seconds: BigInt(s) });

export async function startEnvelopeKit(): Promise<EnvelopeKit> {
  const nats = await startTestNats();
  const stack = await startFunctionsStack(undefined, { natsUrl: nats.url });
  const tenant = await stack.createTenant();
  const other = await stack.createTenant();
  const api = stack.client(EnvelopeService, tenant.adminKey);
  const nc = await connect({ servers: nats.url });
  return {
    nats,
    nc,
    stack,
    tenant,
    other,
    api,
    async open(init = {}) {
      const res = await api.createEnvelope({ workflowId: "wf-env", ...init });
      if (!res.envelope) throw new Error("CreateEnvelope returned no envelope");
      return res.envelope;
    },
    async move(id, status, reason = "") {
      const res = await api.updateEnvelopeStatus({ envelopeId: id, status, reason });
      if (!res.envelope) throw new Error("UpdateEnvelopeStatus returned no envelope");
      return res.envelope;
    },
    async record(id, tenantId = tenant.tenantId) {
      const raw = await stack.redis.get(stack.deps.budgetKeys.envelope(tenantId, id));
      return raw === null ? null : parseEnvelopeRecord(raw);
    },
    eventsOf(id, count, ms = 5000) {
      return tenantEvents(
        nc,
        tenant.tenantId,
        (e) => e.envelopeId === id,
        (kept) => kept.length >= count,
        ms,
      );
    },
    async stop() {
      await nc.close();
      await stack.stop();
      await nats.stop();
    },
  };
}
