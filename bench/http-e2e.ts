/**
 * HTTP end-to-end benchmark: one EvaluatePolicy decision over loopback HTTP,
 * served by the edge (under wrangler dev, and under a bare workerd) and by
 * OPA's own server with the same Rego and data, under a closed-loop load
 * generator (bench/load.ts) on this same machine. Targets: bench/http/targets.ts.
 *
 *   tsx bench/http-e2e.ts
 *   BENCH_REQUESTS=2000 BENCH_CONCURRENCIES=1,8,32 BENCH_WARMUP=300 tsx bench/http-e2e.ts
 *   BENCH_TARGETS=workerd,opa tsx bench/http-e2e.ts    (wrangler | workerd | opa)
 *
 * Before any load the targets must agree on every scenario's decision and
 * matched rules, and every measured reply is checked, so the table never
 * measures errors. See bench/README.md.
 */
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type CpuShares, startCpuAccounting } from "./cpu-accounting.js";
import { fmt, formatReport } from "./http/report.js";
import { SCENARIOS } from "./http/scenarios.js";
import {
  Resources,
  type RunningTarget,
  startOpaTarget,
  startWorkerdTarget,
  startWranglerTarget,
  TARGETS,
  type TargetKey,
  type TargetName,
} from "./http/targets.js";
import { closedLoop, createHttpClient, summarize } from "./load.js";

const SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

export interface HttpBenchRow {
  target: TargetName;
  concurrency: number;
  /** Measured requests (warm-up excluded). */
  requests: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  maxMs: number;
  /** Completed requests per second of wall time. */
  reqPerSec: number;
  /** Non-2xx, transport failures and wrong decisions. */
  errors: number;
  /**
   * CPU during the measured run in % of one core: the load generator (this
   * process), the servers this benchmark started, and everything else on the
   * machine (interference; NaN off Linux).
   */
  cpu: CpuShares;
  errorSamples: string[];
}

export interface HttpBenchOptions {
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

/** Every target must give every scenario its expected decision and the same matched rules. */
async function verifyAgreement(targets: RunningTarget[]): Promise<void> {
  const problems: string[] = [];
  for (const scenario of SCENARIOS) {
    const seen: string[] = [];
    for (const target of targets) {
      const client = await createHttpClient(target.origin, 1);
      try {
        const request = target.loadRequest(scenario);
        const reply = await client.post(request.path, request.body, request.headers);
        if (reply.status !== 200) {
          problems.push(`${target.name} / ${scenario.name}: HTTP ${reply.status} ${reply.body}`);
          continue;
        }
        const verdict = target.verdict(reply);
        if (verdict.decision !== scenario.expected) {
          problems.push(
            `${target.name} / ${scenario.name}: ${verdict.decision}, expected ${scenario.expected}`,
          );
        }
        seen.push(`${target.name}: ${verdict.decision} [${verdict.ruleIds.join(", ")}]`);
      } finally {
        await client.close();
      }
    }
    const distinct = new Set(seen.map((s) => s.slice(s.indexOf(":") + 1)));
    if (distinct.size > 1) {
      problems.push(`${scenario.name}: targets disagree\n    ${seen.join("\n    ")}`);
    }
  }
  if (problems.length > 0) {
    throw new Error(`targets do not agree on the benchmark decisions:\n  ${problems.join("\n  ")}`);
  }
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

export function defaultRequests(concurrency: number): number {
  return concurrency <= 1 ? 3000 : 6000;
}

export async function benchHttpEndToEnd(options: HttpBenchOptions = {}): Promise<HttpBenchRow[]> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const concurrencies = options.concurrencies ?? [1, 32];
  const warmup = options.warmup ?? 300;
  const keys = options.targets ?? (Object.keys(TARGETS) as TargetKey[]);

  const resources = new Resources();
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) return log(`${signal}: still stopping…`);
    signalled = true;
    log(`\n${signal}: stopping everything this benchmark started…`);
    const code = 128 + (signal === "SIGINT" ? 2 : signal === "SIGHUP" ? 1 : 15);
    setTimeout(() => process.exit(code), 20_000).unref();
    void resources.stopAll().finally(() => process.exit(code));
  };
  const onExit = () => resources.exitNow();
  for (const signal of SIGNALS) process.on(signal, onSignal);
  process.on("exit", onExit);

  try {
    const targets: RunningTarget[] = [];
    for (const key of keys) {
      log(`starting ${TARGETS[key]}…`);
      if (key === "wrangler") targets.push(await startWranglerTarget(resources));
      else if (key === "workerd") targets.push(await startWorkerdTarget(resources));
      else targets.push(await startOpaTarget(resources));
      log(`  ${TARGETS[key]} at ${targets[targets.length - 1]?.origin}`);
    }
    await verifyAgreement(targets);
    log(`decisions agree across targets: ${SCENARIOS.map((s) => s.expected).join(", ")}`);

    const rows: HttpBenchRow[] = [];
    for (const target of targets) {
      const requests = SCENARIOS.map((s) => target.loadRequest(s));
      for (const concurrency of concurrencies) {
        const total = options.requests ?? defaultRequests(concurrency);
        const client = await createHttpClient(target.origin, concurrency);
        try {
          await closedLoop(client, requests, warmup, concurrency);
          const stopCpu = startCpuAccounting();
          const result = await closedLoop(client, requests, total, concurrency);
          const cpu = stopCpu();
          const summary = summarize(result);
          const row: HttpBenchRow = {
            target: target.name,
            concurrency,
            requests: total,
            ...summary,
            errors: result.errors,
            cpu,
            errorSamples: result.errorSamples,
          };
          rows.push(row);
          log(
            `  ${target.name} c=${concurrency}: p50 ${fmt(row.p50Ms)} ms, p99 ${fmt(row.p99Ms)} ms, ${Math.round(row.reqPerSec)} req/s, ${row.errors} errors`,
          );
        } finally {
          await client.close();
        }
      }
    }
    return rows;
  } finally {
    await resources.stopAll();
    for (const signal of SIGNALS) process.removeListener(signal, onSignal);
    process.removeListener("exit", onExit);
  }
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
  const rows = await benchHttpEndToEnd({
    requests: envInt("BENCH_REQUESTS"),
    concurrencies,
    warmup,
    targets,
  });
  const client = await createHttpClient("http://127.0.0.1:1", 1);
  await client.close();
  console.log(formatReport(rows, client.kind, warmup));
  if (rows.some((r) => r.errors > 0)) {
    console.error("\nFAILED: some requests failed or returned a wrong decision (see above)");
    process.exitCode = 1;
  }
}

const invokedDirectly =
  process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedDirectly) {
  main().catch((error) => {
    console.error(`http-e2e benchmark failed: ${(error as Error).stack ?? error}`);
    process.exit(1);
  });
}
