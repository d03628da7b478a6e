/**
 * Shared setup of the budget-ledger integration tests: BudgetLedger → @upstash/redis →
 * the local Upstash REST server → the machine's Redis, a key namespace per test (deleted
 * afterwards) and builders for counters, estimates and used values.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { Redis } from "@upstash/redis";
import IORedis from "ioredis";
import { afterAll, afterEach, beforeAll, beforeEach, inject } from "vitest";
import { type BudgetKeys, budgetKeysIn } from "../../core/budget/budget-keys.js";
import {
  BudgetLedger,
  type CounterSpec,
  type ReserveResult,
  type UsageEstimate,
  type UsedValues,
} from "../../core/budget/ledger.js";
import {
  startUpstashRestServer,
  type UpstashRestServer,
} from "../../scripts/lib/upstash-rest-server.js";

export const T = "tenant-1";
/** The ledger's clock; near the real one, since key expiries (PEXPIREAT) use Redis' clock. */
export const NOW = Date.now();
export const HOUR = 3_600_000;

export const estimate = (over: Partial<UsageEstimate> = {}): UsageEstimate => ({
  tokens: 0,
  costMicros: 0,
  llmCalls: 0,
  toolCalls: 0,
  ...over,
});

export const used = (key: string, over: Partial<UsedValues> = {}): UsedValues => ({
  key,
  u_tok: 0,
  u_in: 0,
  u_out: 0,
  u_cost: 0,
  u_llm: 0,
  u_tool: 0,
  u_exec: 0,
  ...over,
});

export const admitted = (results: ReserveResult[]) => results.filter((r) => r.ok).length;

export interface BudgetLedgerFixture {
  readonly keys: BudgetKeys;
  readonly namespace: string;
  /** The machine's Redis, directly (inspection and cleanup). */
  readonly direct: IORedis;
  readonly url: string;
  client(url?: string, enableAutoPipelining?: boolean): Redis;
  ledgerOn(redis?: Redis, timeoutMs?: number): BudgetLedger;
  /** A counter of tenant T's current hour, expiring an hour after it. */
  counter(id: string, limits: CounterSpec["limits"], over?: Partial<CounterSpec>): CounterSpec;
  namespaceKeys(): Promise<string[]>;
}

/** Registers the hooks; call once at the top of a test file. */
export function budgetLedgerFixture(): BudgetLedgerFixture {
  const redisUrl = inject("redisUrl");
  const token = randomBytes(16).toString("hex");
  let server: UpstashRestServer;
  let direct: IORedis;
  let namespace = "";
  let keys = budgetKeysIn("unset");

  beforeAll(async () => {
    server = await startUpstashRestServer({ port: 0, redisUrl, token });
    direct = new IORedis(redisUrl, { enableAutoPipelining: false });
  });
  afterAll(async () => {
    await server?.close();
    await direct?.quit();
  });
  beforeEach(() => {
    namespace = `fulcrum:it:budget:${randomUUID()}`;
    keys = budgetKeysIn(namespace);
  });
  afterEach(async () => {
    const left = await direct.keys(`${namespace}:*`);
    if (left.length > 0) await direct.del(...left);
  });

  const fixture: BudgetLedgerFixture = {
    get keys() {
      return keys;
    },
    get namespace() {
      return namespace;
    },
    get direct() {
      return direct;
    },
    get url() {
      return server.url;
    },
    client: (url = server.url, enableAutoPipelining = true) =>
      new Redis({ url, token, enableTelemetry: false, retry: false, enableAutoPipelining }),
    ledgerOn: (redis = fixture.client(), timeoutMs = 10_000) =>
      new BudgetLedger({ redis, keys, timeoutMs, now: () => NOW }),
    counter: (id, limits, over = {}) => ({
      key: keys.counter(T, id, NOW - (NOW % HOUR)),
      limits,
      suspended: false,
      expireAtMs: NOW + 2 * HOUR,
      ...over,
    }),
    namespaceKeys: () => direct.keys(`${namespace}:*`),
  };
  return fixture;
}
