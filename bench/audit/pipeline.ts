/**
 * The audit pipeline of a bench:audit run, every piece its own and stopped at the end:
 * a NATS server with JetStream on free ports (the streams have fixed names, so never
 * the machine's), the chdb ClickHouse server on a free port with a fresh database
 * (`fulcrum_bench_<time>`, migrated, dropped at the end), and the event processor
 * (workers/event-processor) as a separate process, startable and stoppable between
 * phases (a stopped processor lets a backlog build up).
 */
import { join } from "node:path";
import {
  type JetStreamClient,
  type JetStreamManager,
  jetstream,
  jetstreamManager,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { ensureEventStreams, parseEventStreamSettings } from "../../core/audit/event-stream.js";
import { DEAD_LETTER_STREAM, EVENTS_STREAM } from "../../core/audit/event-subject.js";
import {
  type ClickHouseClient,
  type ClickHouseConfig,
  createClickHouse,
} from "../../db/clickhouse/client.js";
import { migrateClickHouse } from "../../db/clickhouse/migrate.js";
import { freePort } from "../../scripts/lib/ports.js";
import { ensureClickHouse } from "../../scripts/services/clickhouse.js";
import { readPid } from "../../scripts/services/process.js";
import { repoRoot } from "../../scripts/services/service.js";
import { startTestNats } from "../../test/harness/nats-server.js";
import { childPids } from "../cpu-accounting.js";
import { Resources, startProcess } from "../edge/resources.js";

/** PostgreSQL as the processor reaches it (governance events go to its `events`). */
export interface ProcessorDatabase {
  /** fulcrum_app URL of a migrated database. */
  url: string;
  /** The local Neon WebSocket proxy's port. */
  wsProxyPort: number;
}

export interface RunningProcessor {
  pid: number;
  /** Its /metrics and /healthz origin. */
  origin: string;
  stop(): Promise<void>;
}

export interface Pipeline {
  natsUrl: string;
  natsWsUrl: string;
  natsPid: number;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  clickhouse: ClickHouseClient;
  clickhouseConfig: ClickHouseConfig;
  /** "ClickHouse 26.7…" and whether this run started the server. */
  clickhouseDetail: string;
  clickhousePid: number;
  /** Starts the processor; resolves once its /healthz answers 200. */
  startProcessor(): Promise<RunningProcessor>;
  /** The processor started last, while it runs. */
  processor(): RunningProcessor | undefined;
  /** Rows of `events` (FINAL: each event once), optionally of one source / tenant. */
  rows(filter?: { source?: string; tenantId?: string; final?: boolean }): Promise<number>;
  /** Messages in the dead-letter stream. */
  deadLetters(): Promise<number>;
  /** Messages neither delivered nor acknowledged, over every consumer of the events stream. */
  unacknowledged(): Promise<number>;
}

function newPids(before: Set<number>): number {
  const started = [...childPids()].filter((pid) => !before.has(pid));
  return started.length === 1 ? (started[0] as number) : Number.NaN;
}

export async function startPipeline(
  resources: Resources,
  database: ProcessorDatabase,
  log: (line: string) => void,
): Promise<Pipeline> {
  let before = childPids();
  const nats = await startTestNats();
  resources.add(() => nats.stop());
  const natsPid = newPids(before);

  const nc = await connect({ servers: nats.url, name: "bench-audit" });
  resources.add(() => nc.close());
  const jsm = await jetstreamManager(nc);
  // What every producer does at start; the backlog phases publish before the processor runs.
  await ensureEventStreams(jsm, parseEventStreamSettings({}));
  const js = jetstream(nc);

  const dir = resources.tempDir("fulcrum-bench-clickhouse-");
  before = childPids();
  const server = await ensureClickHouse({
    port: await freePort(),
    dir,
    removeDirOnStop: true,
    log: (line) => log(`  ${line}`),
  });
  resources.add(() => server.stop());
  const clickhousePid = readPid(join(dir, "clickhouse.pid")) ?? newPids(before);
  const clickhouseConfig: ClickHouseConfig = {
    url: server.url,
    database: `fulcrum_bench_${Date.now()}`,
  };
  await migrateClickHouse(clickhouseConfig);
  const clickhouse = createClickHouse(clickhouseConfig);
  resources.add(async () => {
    // A reused server keeps running: leave nothing of this run in it.
    await clickhouse.command({ query: `DROP DATABASE IF EXISTS ${clickhouseConfig.database}` });
    await clickhouse.close();
  });

  const count = async (query: string, params: Record<string, string>) => {
    const result = await clickhouse.query({ query, query_params: params, format: "JSONEachRow" });
    const rows = (await result.json()) as { n: string | number }[];
    return Number(rows[0]?.n ?? Number.NaN);
  };

  let current: RunningProcessor | undefined;
  return {
    natsUrl: nats.url,
    natsWsUrl: nats.wsUrl,
    natsPid,
    nc,
    js,
    jsm,
    clickhouse,
    clickhouseConfig,
    clickhouseDetail: `${server.detail}${server.startedByUs ? " (chdb HTTP server started for this run)" : " (reused)"}`,
    clickhousePid,
    processor: () => current,
    async startProcessor() {
      if (current) throw new Error("the event processor is already running");
      const port = await freePort();
      const origin = `http://127.0.0.1:${port}`;
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        NATS_URL: nats.url,
        CLICKHOUSE_URL: clickhouseConfig.url,
        CLICKHOUSE_DATABASE: clickhouseConfig.database,
        DATABASE_URL: database.url,
        PG_WS_PROXY_PORT: String(database.wsProxyPort),
        EVENT_PROCESSOR_HOST: "127.0.0.1",
        EVENT_PROCESSOR_PORT: String(port),
      };
      // Under the Node that runs us (tsx's bin would take whatever `node` is on PATH).
      const tsx = join(repoRoot, "node_modules", "tsx", "dist", "cli.mjs");
      const main = join(repoRoot, "workers", "event-processor", "src", "main.ts");
      // Its own Resources, so a phase can stop it (and the run's end stops it if not).
      const own = new Resources();
      resources.add(
        () => own.stopAll(),
        () => own.exitNow(),
      );
      const { pid } = await startProcess(
        own,
        process.execPath,
        [tsx, main],
        `${origin}/healthz`,
        env,
      );
      const running: RunningProcessor = {
        pid,
        origin,
        // SIGTERM to its process group: the processor finishes the batch in flight, then exits.
        async stop() {
          await own.stopAll();
          if (current === running) current = undefined;
        },
      };
      current = running;
      return running;
    },
    async rows(filter = {}) {
      const where: string[] = [];
      const params: Record<string, string> = {};
      if (filter.source !== undefined) {
        where.push("source = {source:String}");
        params.source = filter.source;
      }
      if (filter.tenantId !== undefined) {
        where.push("tenant_id = {tenant:String}");
        params.tenant = filter.tenantId;
      }
      const final = filter.final === false ? "" : " FINAL";
      const clause = where.length > 0 ? ` WHERE ${where.join(" AND ")}` : "";
      return count(`SELECT count() AS n FROM events${final}${clause}`, params);
    },
    async deadLetters() {
      return (await jsm.streams.info(DEAD_LETTER_STREAM)).state.messages;
    },
    async unacknowledged() {
      let total = 0;
      for await (const consumer of jsm.consumers.list(EVENTS_STREAM)) {
        total += consumer.num_pending + consumer.num_ack_pending;
      }
      return total;
    },
  };
}
