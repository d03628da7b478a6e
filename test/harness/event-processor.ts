/**
 * Helpers of the event processor's integration tests (test/integration/event-processor*):
 * events to publish, a PostgreSQL database with tenants and a proxy the processor can
 * reach, the processor's configuration, the processor as a child process (for SIGKILL
 * and SIGTERM), and ClickHouse / JetStream counts to assert on.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type JetStreamClient, jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { encodeEvent, newEvent } from "../../core/audit/event-codec.js";
import {
  type EventStreamSettings,
  ensureEventStreams,
  eventPublishOptions,
} from "../../core/audit/event-stream.js";
import { EVENTS_STREAM, eventSubject } from "../../core/audit/event-subject.js";
import { uuidv7 } from "../../core/ids/uuidv7.js";
import type { ClickHouseClient, ClickHouseConfig } from "../../db/clickhouse/client.js";
import { tenants } from "../../db/schema/index.js";
import { type Event, EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { Decision } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { type PgWsProxy, startPgWsProxy } from "../../scripts/lib/pg-ws-proxy.js";
import { freePort } from "../../scripts/lib/ports.js";
import { repoRoot } from "../../scripts/services/service.js";
import type { EventProcessorConfig } from "../../workers/event-processor/src/config.js";
import { CONSUMER_NAME } from "../../workers/event-processor/src/consumer.js";
import { type FreshDatabase, openFreshDatabase } from "./fresh-database.js";

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true; fails with `what` after `timeoutMs`. */
export async function eventually(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
  everyMs = 100,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what}`);
    await sleep(everyMs);
  }
}

// ---- events ---------------------------------------------------------------------------

/** A valid event; `i` spreads them over types, one in ten governance-relevant. */
export function testEvent(tenantId: string, i: number, type?: EventType): Event {
  const eventType =
    type ??
    (i % 10 === 0
      ? EventType.POLICY_VIOLATION
      : i % 2 === 0
        ? EventType.LLM_CALL_COMPLETED
        : EventType.POLICY_EVALUATED);
  return newEvent({
    eventId: uuidv7(),
    tenantId,
    executionId: `exec-${i % 50}`,
    envelopeId: `env-${i % 20}`,
    eventType,
    timestamp: timestampFromDate(new Date()),
    source: "event-processor-test",
    payload: { i, prompt: "user text that must never reach PostgreSQL" },
    ...(eventType === EventType.LLM_CALL_COMPLETED
      ? { tokenInfo: { modelId: "gpt-4o", inputTokens: 10n, outputTokens: 5n, costUsd: 0.001 } }
      : {}),
    ...(eventType === EventType.POLICY_VIOLATION || eventType === EventType.POLICY_EVALUATED
      ? {
          policyResult: {
            policyId: "policy-1",
            ruleId: "rule-1",
            decision: eventType === EventType.POLICY_VIOLATION ? Decision.DENY : Decision.ALLOW,
          },
        }
      : {}),
  });
}

export function isGovernanceType(type: EventType): boolean {
  return [
    EventType.POLICY_VIOLATION,
    EventType.POLICY_APPROVAL_REQUIRED,
    EventType.APPROVAL_REQUESTED,
    EventType.APPROVAL_GRANTED,
    EventType.APPROVAL_REJECTED,
    EventType.APPROVAL_EXPIRED,
    EventType.BUDGET_WARNING,
    EventType.BUDGET_EXCEEDED,
    EventType.MANAGEMENT_CHANGE,
  ].includes(type);
}

/** Publishes events as producers do (msgID = event id), `inFlight` at a time. */
export async function publishEvents(
  js: JetStreamClient,
  events: readonly Event[],
  inFlight = 500,
): Promise<void> {
  for (let start = 0; start < events.length; start += inFlight) {
    await Promise.all(
      events
        .slice(start, start + inFlight)
        .map((event) =>
          js.publish(
            eventSubject(event.tenantId, event.eventType),
            encodeEvent(event),
            eventPublishOptions(event.eventId, 10_000),
          ),
        ),
    );
  }
}

/** A producer's connection to the test NATS (reconnecting forever) with the streams. */
export async function producer(
  url: string,
  streams: EventStreamSettings,
): Promise<{ nc: NatsConnection; js: JetStreamClient; close(): Promise<void> }> {
  const nc = await connect({ servers: url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  await ensureEventStreams(await jetstreamManager(nc), streams);
  return { nc, js: jetstream(nc), close: () => nc.close() };
}

/** The processor's consumer as the server sees it. */
export async function consumerState(nc: NatsConnection) {
  const info = await (await jetstreamManager(nc)).consumers.info(EVENTS_STREAM, CONSUMER_NAME);
  return {
    pending: info.num_pending,
    ackPending: info.num_ack_pending,
    redelivered: info.num_redelivered,
  };
}

// ---- ClickHouse -----------------------------------------------------------------------

export async function chCounts(client: ClickHouseClient): Promise<{
  final: number;
  raw: number;
  unique: number;
}> {
  const rows = async (query: string) => {
    const result = await client.query({ query, format: "JSONEachRow" });
    const [row] = (await result.json()) as { n: string }[];
    return Number(row?.n ?? 0);
  };
  const [final, raw, unique] = await Promise.all([
    rows("SELECT count() AS n FROM events FINAL"),
    rows("SELECT count() AS n FROM events"),
    rows("SELECT uniqExact(event_id) AS n FROM events"),
  ]);
  return { final, raw, unique };
}

// ---- PostgreSQL -----------------------------------------------------------------------

export interface EventsDatabase {
  fresh: FreshDatabase;
  /** fulcrum_app through a proxy of its own: what the processor is given. */
  databaseUrl: string;
  proxyPort: number;
  /** Tenants that exist in `tenants`. */
  tenantA: string;
  tenantB: string;
  close(): Promise<void>;
}

export async function openEventsDatabase(pg: string): Promise<EventsDatabase> {
  const fresh = await openFreshDatabase(pg, "fulcrum_ep");
  let proxy: PgWsProxy | undefined;
  try {
    proxy = await startPgWsProxy({ port: 0, host: "127.0.0.1", allowedTargets: [pg] });
    const tenantA = crypto.randomUUID();
    const tenantB = crypto.randomUUID();
    for (const id of [tenantA, tenantB]) {
      await fresh.owner.db.insert(tenants).values({ id, name: `EP ${id}`, slug: `ep-${id}` });
    }
    const open = proxy;
    return {
      fresh,
      databaseUrl: `postgres://fulcrum_app@${pg}/${fresh.name}`,
      proxyPort: proxy.port,
      tenantA,
      tenantB,
      async close() {
        await fresh.close();
        await open.close();
      },
    };
  } catch (error) {
    await proxy?.close();
    await fresh.close();
    throw error;
  }
}

// ---- the processor --------------------------------------------------------------------

export function processorConfig(input: {
  natsUrl: string;
  clickhouse: ClickHouseConfig;
  db: EventsDatabase;
  streams: EventStreamSettings;
  overrides?: Partial<EventProcessorConfig>;
}): EventProcessorConfig {
  return {
    natsUrl: input.natsUrl,
    clickhouse: input.clickhouse,
    databaseUrl: input.db.databaseUrl,
    pgWsProxyPort: input.db.proxyPort,
    http: { host: "127.0.0.1", port: 0 },
    batchMaxEvents: 5000,
    batchConcurrency: 2,
    batchMaxWaitMs: 200,
    maxDeliver: 5,
    ackWaitMs: 10_000,
    statsIntervalMs: 250,
    faultAckDelayMs: 0,
    streams: input.streams,
    ...input.overrides,
  };
}

/** The environment main.ts reads for `config`. */
export function processorEnv(config: EventProcessorConfig): Record<string, string> {
  return {
    NATS_URL: config.natsUrl,
    CLICKHOUSE_URL: config.clickhouse.url,
    CLICKHOUSE_DATABASE: config.clickhouse.database,
    ...(config.clickhouse.username ? { CLICKHOUSE_USER: config.clickhouse.username } : {}),
    ...(config.clickhouse.password ? { CLICKHOUSE_PASSWORD: config.clickhouse.password } : {}),
    DATABASE_URL: config.databaseUrl,
    ...(config.pgWsProxyPort ? { PG_WS_PROXY_PORT: String(config.pgWsProxyPort) } : {}),
    EVENT_PROCESSOR_HOST: config.http.host,
    EVENT_PROCESSOR_PORT: String(config.http.port),
    BATCH_MAX_EVENTS: String(config.batchMaxEvents),
    BATCH_MAX_WAIT_MS: String(config.batchMaxWaitMs),
    MAX_DELIVER: String(config.maxDeliver),
    ACK_WAIT_MS: String(config.ackWaitMs),
    STATS_INTERVAL_MS: String(config.statsIntervalMs),
    BATCH_CONCURRENCY: String(config.batchConcurrency),
    EVENT_PROCESSOR_FAULT_ACK_DELAY_MS: String(config.faultAckDelayMs),
    EVENTS_STREAM_MAX_AGE_HOURS: String(config.streams.maxAgeMs / 3600_000),
    EVENTS_STREAM_MAX_BYTES: String(config.streams.maxBytes),
    EVENTS_DUPLICATE_WINDOW_SECONDS: String(config.streams.duplicateWindowMs / 1000),
  };
}

export interface ProcessorChild {
  child: ChildProcess;
  /** http://127.0.0.1:<port> */
  url: string;
  /** Resolves with the exit code (or the signal's name). */
  exited: Promise<number | string>;
  /** Everything it logged (JSON lines). */
  output(): string;
}

/** Runs workers/event-processor/src/main.ts as its own process (tsx), as a container would. */
export async function spawnProcessor(config: EventProcessorConfig): Promise<ProcessorChild> {
  const port = config.http.port || (await freePort());
  const env = { ...processorEnv({ ...config, http: { ...config.http, port } }) };
  const child = spawn(
    process.execPath,
    // tsx as a loader, not its CLI: the CLI is a parent process that relays signals,
    // and the test means to signal the processor itself.
    ["--import", "tsx", join(repoRoot, "workers", "event-processor", "src", "main.ts")],
    { cwd: repoRoot, env: { PATH: process.env.PATH, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  let log = "";
  child.stdout?.on("data", (chunk: Buffer) => {
    log += chunk.toString();
  });
  child.stderr?.on("data", (chunk: Buffer) => {
    log += chunk.toString();
  });
  const exited = once(child, "exit").then(([code, signal]) => (code ?? signal) as number | string);
  const url = `http://127.0.0.1:${port}`;
  return { child, url, exited, output: () => log };
}

/** Waits until a child's /healthz answers healthy. */
export async function waitHealthy(child: ProcessorChild, timeoutMs = 30_000): Promise<void> {
  await eventually(
    `processor healthy at ${child.url}\n${child.output().slice(-2000)}`,
    async () => (await fetch(`${child.url}/healthz`)).status === 200,
    timeoutMs,
    100,
  );
}
