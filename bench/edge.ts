/**
 * `npm run bench:edge`: CheckPolicy end to end — API-key authentication, the
 * tenant's rate limit and its compiled policy — against the local edge Worker and
 * real Redis, at 1 and 32 concurrent clients, next to the same decision from OPA's
 * server. Prints p50 / p99 latency, throughput and Redis round trips per decision.
 *
 *   tsx bench/edge.ts
 *   BENCH_REQUESTS=2000 BENCH_CONCURRENCIES=1,8,32 BENCH_WARMUP=300 tsx bench/edge.ts
 *   BENCH_TARGETS=workerd,opa tsx bench/edge.ts     (wrangler | workerd | opa)
 *
 * One run: PostgreSQL and Redis (reused or started), the management API in process
 * creating a tenant, the policy (structured rules + a RATE_LIMIT rule), activating
 * it and creating a `check` key (bench/edge/control-plane.ts); the edge's own
 * Upstash-REST server, whose requests are the edge's Redis round trips
 * (bench/edge/redis-rest.ts); then the targets (bench/edge/targets.ts), which must
 * agree on every scenario before any load. Every measured reply is checked, so the
 * table never measures errors. Everything started is stopped however the run ends.
 * See bench/README.md.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { startCpuAccounting } from "./cpu-accounting.js";
import { type ControlPlane, startControlPlane } from "./edge/control-plane.js";
import { type EdgeRedisRest, startEdgeRedisRest } from "./edge/redis-rest.js";
import { type EdgeBenchRow, fmt, formatReport } from "./edge/report.js";
import type { Resources } from "./edge/resources.js";
import { withResources } from "./edge/resources.js";
import { RATE_LIMIT_PER_MINUTE, SCENARIOS } from "./edge/scenarios.js";
import {
  type RunningTarget,
  startOpaTarget,
  startWorkerdTarget,
  startWranglerTarget,
  TARGETS,
  type TargetKey,
} from "./edge/targets.js";
import { closedLoop, createHttpClient, summarize } from "./load.js";

export interface EdgeBenchOptions {
  /** Measured requests per (target, concurrency); default 3000 at c=1, 6000 above. */
  requests?: number;
  /** Default [1, 32]. */
  concurrencies?: number[];
  /** Warm-up requests per (target, concurrency), not measured; default 300. */
  warmup?: number;
  /** Default all three. */
  targets?: TargetKey[];
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export function defaultRequests(concurrency: number): number {
  return concurrency <= 1 ? 3000 : 6000;
}

/** Every target must give every scenario its expected decision and matched rules. */
async function verifyAgreement(targets: RunningTarget[]): Promise<void> {
  const problems: string[] = [];
  for (const target of targets) {
    const client = await createHttpClient(target.origin, 1);
    try {
      for (const scenario of SCENARIOS) {
        const request = target.loadRequest(scenario);
        const reply = await client.post(request.path, request.body, request.headers);
        if (reply.status !== 200) {
          problems.push(`${target.name} / ${scenario.name}: HTTP ${reply.status} ${reply.body}`);
          continue;
        }
        try {
          const problem = request.check(reply);
          if (problem) problems.push(`${target.name} / ${problem}`);
        } catch (error) {
          problems.push(`${target.name} / ${scenario.name}: ${(error as Error).message}`);
        }
      }
    } finally {
      await client.close();
    }
  }
  if (problems.length > 0) {
    throw new Error(`targets do not give the expected decisions:\n  ${problems.join("\n  ")}`);
  }
}

async function startTarget(
  key: TargetKey,
  resources: Resources,
  plane: ControlPlane,
  rest: EdgeRedisRest,
): Promise<RunningTarget> {
  if (key === "wrangler") return startWranglerTarget(resources, plane, rest);
  if (key === "workerd") return startWorkerdTarget(resources, plane, rest);
  return startOpaTarget(resources, plane);
}

export async function benchEdge(
  options: EdgeBenchOptions = {},
): Promise<{ rows: EdgeBenchRow[]; plane: ControlPlane }> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const concurrencies = options.concurrencies ?? [1, 32];
  const warmup = options.warmup ?? 300;
  const keys = options.targets ?? (Object.keys(TARGETS) as TargetKey[]);

  return withResources(log, async (resources) => {
    log("control plane: PostgreSQL, Redis, management API; tenant, policy, activation, key…");
    const plane = await startControlPlane(resources);
    log(`  tenant ${plane.tenantId}, policy ${plane.policyId} v${plane.policyVersion} active`);
    const rest = await startEdgeRedisRest(resources, plane.redisUrl);
    log(`  the edge's Upstash-REST server at ${rest.url} → ${plane.redisUrl}`);

    const targets: RunningTarget[] = [];
    for (const key of keys) {
      log(`starting ${TARGETS[key]}…`);
      targets.push(await startTarget(key, resources, plane, rest));
      log(`  ${TARGETS[key]} at ${targets[targets.length - 1]?.origin}`);
    }
    await verifyAgreement(targets);
    log(
      `every target decides as expected: ${SCENARIOS.map((s) => `${s.expected} [${s.ruleIds.join(",")}]`).join(", ")}`,
    );

    const rows: EdgeBenchRow[] = [];
    for (const target of targets) {
      const requests = SCENARIOS.map((s) => target.loadRequest(s));
      for (const concurrency of concurrencies) {
        const total = options.requests ?? defaultRequests(concurrency);
        const client = await createHttpClient(target.origin, concurrency);
        try {
          await closedLoop(client, requests, warmup, concurrency);
          const redisBefore = target.usesEdgeRedis ? await rest.requests() : 0;
          const stopCpu = startCpuAccounting({ target: target.pid, redisRest: rest.pid });
          const result = await closedLoop(client, requests, total, concurrency);
          const cpu = stopCpu();
          const redisAfter = target.usesEdgeRedis ? await rest.requests() : 0;
          const row: EdgeBenchRow = {
            target: target.name,
            concurrency,
            requests: total,
            ...summarize(result),
            redisRoundTrips: target.usesEdgeRedis ? (redisAfter - redisBefore) / total : Number.NaN,
            errors: result.errors,
            cpu,
            errorSamples: result.errorSamples,
          };
          rows.push(row);
          log(
            `  ${target.name} c=${concurrency}: p50 ${fmt(row.p50Ms)} ms, p99 ${fmt(row.p99Ms)} ms, ${Math.round(row.reqPerSec)} req/s, ${fmt(row.redisRoundTrips, 3)} Redis RT/decision, ${row.errors} errors`,
          );
        } finally {
          await client.close();
        }
      }
    }
    return { rows, plane };
  });
}

function envList(name: string): string[] | undefined {
  const value = process.env[name]?.trim();
  return value ? value.split(",").map((s) => s.trim()) : undefined;
}

function envInt(name: string): number | undefined {
  const value = process.env[name]?.trim();
  if (!value) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} must be a positive integer`);
  return n;
}

async function main(): Promise<void> {
  const targets = envList("BENCH_TARGETS") as TargetKey[] | undefined;
  for (const t of targets ?? []) {
    if (!(t in TARGETS)) throw new Error(`BENCH_TARGETS: unknown target "${t}"`);
  }
  const concurrencies = envList("BENCH_CONCURRENCIES")?.map((c) => {
    const n = Number(c);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`BENCH_CONCURRENCIES: bad value "${c}"`);
    return n;
  });
  const warmup = envInt("BENCH_WARMUP") ?? 300;
  const { rows, plane } = await benchEdge({
    requests: envInt("BENCH_REQUESTS"),
    concurrencies,
    warmup,
    targets,
  });
  const probe = await createHttpClient("http://127.0.0.1:1", 1);
  await probe.close();
  console.log(
    formatReport(rows, {
      clientKind: probe.kind,
      warmup,
      policyId: plane.policyId,
      rateLimit: Number(RATE_LIMIT_PER_MINUTE).toLocaleString("en-US"),
    }),
  );
  if (rows.some((r) => r.errors > 0)) {
    console.error("\nFAILED: some requests failed or returned a wrong decision (see above)");
    process.exitCode = 1;
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  main().catch((error) => {
    console.error(`bench:edge failed: ${(error as Error).stack ?? error}`);
    process.exit(1);
  });
}
