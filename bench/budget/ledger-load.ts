/**
 * The two budget-ledger measurements of bench/budget.ts, against one Upstash REST server:
 * - throughput: closed loop of reserve → settle at a fixed concurrency, every call
 *   checked (a refusal or an error is a failure), counters checked exactly afterwards;
 * - overshoot: n reservations started at once against a limit, over several clients.
 */
import { Redis } from "@upstash/redis";
import type { BudgetKeys } from "../../core/budget/budget-keys.js";
import { BudgetLedger, type CounterSpec, type UsageEstimate } from "../../core/budget/ledger.js";
import { percentile } from "../load.js";

export interface RestTarget {
  url: string;
  token: string;
  requests(): Promise<number>;
}

export const client = (target: RestTarget, enableAutoPipelining = true) =>
  new Redis({
    url: target.url,
    token: target.token,
    enableTelemetry: false,
    retry: false,
    enableAutoPipelining,
  });

const HOUR = 3_600_000;
const TENANT = "bench-tenant";

export interface ThroughputRow {
  concurrency: number;
  ops: number;
  opsPerSec: number;
  reserveP50: number;
  reserveP99: number;
  opP50: number;
  opP99: number;
  /** HTTP requests to Redis per reserve + settle. */
  roundTrips: number;
}

/**
 * `ops` reserve + settle pairs at `concurrency`, each against three counters (tenant,
 * workflow and envelope budgets: what a typical governed call draws on).
 */
export async function measureThroughput(
  target: RestTarget,
  keys: BudgetKeys,
  concurrency: number,
  ops: number,
  problems: string[],
): Promise<ThroughputRow> {
  const ledger = new BudgetLedger({ redis: client(target), keys, timeoutMs: 10_000 });
  const now = Date.now();
  const counters: CounterSpec[] = ["tenant", "workflow", `env:c${concurrency}`].map((id) => ({
    key: keys.counter(TENANT, `${id}-c${concurrency}`, now - (now % HOUR)),
    limits: { tokens: 10 ** 12, costMicros: 10 ** 12, llmCalls: 10 ** 9 },
    suspended: false,
    expireAtMs: now + 2 * HOUR,
  }));
  const estimate: UsageEstimate = { tokens: 500, costMicros: 7_500, llmCalls: 1, toolCalls: 0 };
  // Running absolute totals, as PostgreSQL would report them after each settle.
  const total = { tok: 0, cost: 0, llm: 0 };
  const one = async (): Promise<[number, number]> => {
    const t0 = performance.now();
    const r = await ledger.reserve({ tenantId: TENANT, counters, estimate, ttlMs: 300_000 });
    const t1 = performance.now();
    if (!r.ok || !r.reservationId) throw new Error(`reservation refused: ${JSON.stringify(r)}`);
    total.tok += 420;
    total.cost += 6_300;
    total.llm += 1;
    const used = counters.map((c) => ({
      key: c.key,
      u_tok: total.tok,
      u_in: 0,
      u_out: 0,
      u_cost: total.cost,
      u_llm: total.llm,
      u_tool: 0,
      u_exec: 0,
      expireAtMs: c.expireAtMs ?? null,
    }));
    const s = await ledger.settle({ tenantId: TENANT, reservationId: r.reservationId, used });
    if (!s.released) throw new Error("settle did not find its reservation");
    return [t1 - t0, performance.now() - t0];
  };
  for (let i = 0; i < Math.min(50, ops); i++) await one(); // scripts loaded, connections warm
  const reserveMs: number[] = [];
  const opMs: number[] = [];
  let started = 0;
  let errors = 0;
  const requestsBefore = await target.requests();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (started < ops) {
        started++;
        try {
          const [reserve, op] = await one();
          reserveMs.push(reserve);
          opMs.push(op);
        } catch (error) {
          errors++;
          if (errors <= 3) problems.push(`c=${concurrency}: ${(error as Error).message}`);
        }
      }
    }),
  );
  const wallMs = performance.now() - t0;
  const requests = (await target.requests()) - requestsBefore;
  const states = await ledger.readCounters(counters.map((c) => c.key));
  for (const s of states) {
    if (s.used.tokens !== total.tok || s.reserved.tokens !== 0 || s.reserved.costMicros !== 0) {
      problems.push(
        `c=${concurrency}: counter ${s.key} holds ${JSON.stringify(s)}, expected used ${total.tok}, nothing reserved`,
      );
    }
  }
  if (errors > 0) problems.push(`c=${concurrency}: ${errors} failed operations`);
  const r = Float64Array.from(reserveMs).sort();
  const o = Float64Array.from(opMs).sort();
  return {
    concurrency,
    ops: opMs.length,
    opsPerSec: (opMs.length / wallMs) * 1000,
    reserveP50: percentile(r, 50),
    reserveP99: percentile(r, 99),
    opP50: percentile(o, 50),
    opP99: percentile(o, 99),
    roundTrips: requests / Math.max(1, opMs.length),
  };
}

export interface OvershootRow {
  concurrent: number;
  estimate: number;
  limit: number;
  admitted: number;
  mostThatFit: number;
  reserved: number;
  overshoot: number;
}

/**
 * `concurrent` reservations of `estimate` tokens started at once against `limit`, spread
 * over four clients (two batching like the edge, two sending a request per call).
 */
export async function measureOvershoot(
  target: RestTarget,
  keys: BudgetKeys,
  concurrent: number,
  limit: number,
  estimateTokens: number,
  problems: string[],
): Promise<OvershootRow> {
  const ledgers = [true, true, false, false].map(
    (pipelining) =>
      new BudgetLedger({ redis: client(target, pipelining), keys, timeoutMs: 30_000 }),
  );
  const now = Date.now();
  const counter: CounterSpec = {
    key: keys.counter(TENANT, `overshoot-${concurrent}`, now - (now % HOUR)),
    limits: { tokens: limit },
    suspended: false,
    expireAtMs: now + 2 * HOUR,
  };
  const estimate: UsageEstimate = {
    tokens: estimateTokens,
    costMicros: 0,
    llmCalls: 0,
    toolCalls: 0,
  };
  const results = await Promise.allSettled(
    Array.from({ length: concurrent }, (_, i) =>
      (ledgers[i % ledgers.length] as BudgetLedger).reserve({
        tenantId: TENANT,
        counters: [counter],
        estimate,
        ttlMs: 300_000,
      }),
    ),
  );
  const failed = results.filter((r) => r.status === "rejected").length;
  if (failed > 0) problems.push(`overshoot n=${concurrent}: ${failed} reservations failed`);
  const admitted = results.filter((r) => r.status === "fulfilled" && r.value.ok).length;
  const [state] = await (ledgers[0] as BudgetLedger).readCounters([counter.key]);
  const reserved = state?.reserved.tokens ?? Number.NaN;
  const mostThatFit = Math.min(concurrent, Math.floor(limit / estimateTokens));
  const row = {
    concurrent,
    estimate: estimateTokens,
    limit,
    admitted,
    mostThatFit,
    reserved,
    overshoot: Math.max(0, reserved - limit),
  };
  if (row.overshoot !== 0)
    problems.push(`overshoot n=${concurrent}: ${row.overshoot} tokens over the limit`);
  if (admitted !== mostThatFit)
    problems.push(`overshoot n=${concurrent}: admitted ${admitted}, ${mostThatFit} fit`);
  if (reserved !== admitted * estimateTokens)
    problems.push(`overshoot n=${concurrent}: reserved ${reserved} ≠ admitted × estimate`);
  return row;
}
