/** The table and notes bench:edge prints (markdown). */
import { cpus, platform, release } from "node:os";
import type { CpuShares } from "../cpu-accounting.js";
import { SCENARIOS } from "./scenarios.js";
import { TARGETS, type TargetName } from "./targets.js";

export interface EdgeBenchRow {
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
  /** HTTP requests the edge's Upstash-REST server got during the run / decisions; NaN for OPA. */
  redisRoundTrips: number;
  /** Non-2xx, transport failures and wrong decisions. */
  errors: number;
  cpu: CpuShares;
  errorSamples: string[];
}

export interface ReportContext {
  clientKind: string;
  warmup: number;
  policyId: string;
  rateLimit: string;
}

/** The issue's targets (c = 32; round trips at every c). */
export const TARGET_P50_MS = 2;
export const TARGET_P99_MS = 5;
export const TARGET_ROUND_TRIPS = 2;

export const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const pct = (n: number) => (Number.isFinite(n) ? `${Math.round(n)}%` : "n/a");

function table(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...body.map(line)].join("\n");
}

const isEdge = (r: EdgeBenchRow) => r.target !== TARGETS.opa;

/** CPU the target's processes spent per decision (ms): its share of a core over the rate. */
export function cpuMsPerDecision(r: EdgeBenchRow): number {
  return ((r.cpu.parts.target ?? Number.NaN) / 100 / r.reqPerSec) * 1000;
}

function verdicts(rows: EdgeBenchRow[]): string[] {
  const out: string[] = [];
  const edge = rows.filter(isEdge);
  const atTarget = edge.filter((r) => r.concurrency === 32);
  for (const r of atTarget) {
    const p50 = r.p50Ms <= TARGET_P50_MS ? "met" : "NOT met";
    const p99 = r.p99Ms <= TARGET_P99_MS ? "met" : "NOT met";
    out.push(
      `- ${r.target}, c=32: p50 ${fmt(r.p50Ms)} ms (target ≤ ${TARGET_P50_MS}: ${p50}), p99 ${fmt(r.p99Ms)} ms (target ≤ ${TARGET_P99_MS}: ${p99}).`,
    );
  }
  for (const r of edge.filter((r) => r.concurrency === 1)) {
    out.push(
      `- ${r.target}, c=1: p50 ${fmt(r.p50Ms)} ms (≤ ${TARGET_P50_MS}: ${r.p50Ms <= TARGET_P50_MS ? "met" : "NOT met"}), p99 ${fmt(r.p99Ms)} ms (≤ ${TARGET_P99_MS}: ${r.p99Ms <= TARGET_P99_MS ? "met" : "NOT met"}): one decision without queueing; the target's processes spent ${fmt(cpuMsPerDecision(r))} ms of CPU per decision.`,
    );
  }
  const worst = Math.max(...edge.map((r) => r.redisRoundTrips));
  if (edge.length > 0) {
    out.push(
      `- Redis round trips per decision: at most ${fmt(worst)} (target ≤ ${TARGET_ROUND_TRIPS}: ${worst <= TARGET_ROUND_TRIPS ? "met" : "NOT met"}).`,
    );
  }
  // Little's law for a closed loop: c requests always in flight, so mean latency = c / throughput.
  for (const r of edge.filter((r) => r.concurrency > 1)) {
    const needed = r.concurrency / (TARGET_P50_MS / 1000);
    out.push(
      `- Closed loop, c=${r.concurrency}: latency ≈ c / throughput = ${r.concurrency} / ${Math.round(r.reqPerSec)} req/s = ${fmt((r.concurrency / r.reqPerSec) * 1000)} ms (measured mean ${fmt(r.meanMs)} ms). A ${TARGET_P50_MS} ms median at c=${r.concurrency} needs about ${Math.round(needed)} req/s from this machine` +
        (r.reqPerSec * 2 < needed
          ? `, ${fmt(needed / r.reqPerSec, 1)}× what ${r.target} sustains here: out of reach on ${cpus().length} cores with the load generator on them, whatever the per-decision cost.`
          : "."),
    );
  }
  return out;
}

export function formatReport(rows: EdgeBenchRow[], ctx: ReportContext): string {
  const concurrencies = [...new Set(rows.map((r) => r.concurrency))];
  const counts = concurrencies
    .map((c) => `c=${c}: ${rows.find((r) => r.concurrency === c)?.requests}`)
    .join(", ");
  const cpu = cpus();
  const out: string[] = [
    "## bench:edge — CheckPolicy end to end (authentication, rate limit, policy) over loopback",
    "",
    `machine: ${cpu.length} cores (${cpu[0]?.model.trim() ?? "unknown cpu"}), ${platform()} ${release()}, node ${process.version}`,
    `load: closed loop, ${ctx.clientKind} keep-alive, load generator ON THE SAME MACHINE (competes with the servers for the ${cpu.length} cores)`,
    `requests per run: ${counts} (after ${ctx.warmup} warm-up requests); round-robin over ${SCENARIOS.length} decisions: ${SCENARIOS.map((s) => s.expected).join(" / ")}`,
    "",
    table(
      [
        "target",
        "c",
        "p50 ms",
        "p99 ms",
        "mean ms",
        "req/s",
        "Redis RT/decision",
        "target CPU ms/decision",
        "errors",
        "cpu: client/target/REST/other",
      ],
      rows.map((r) => [
        r.target,
        String(r.concurrency),
        fmt(r.p50Ms),
        fmt(r.p99Ms),
        fmt(r.meanMs),
        String(Math.round(r.reqPerSec)),
        isEdge(r) ? fmt(r.redisRoundTrips, 3) : "— (none)",
        fmt(cpuMsPerDecision(r)),
        String(r.errors),
        [r.cpu.client, r.cpu.parts.target, r.cpu.parts.redisRest, r.cpu.other]
          .map((n) => pct(n ?? Number.NaN))
          .join(" / "),
      ]),
    ),
    "",
    "Against the targets (p50 ≤ 2 ms and p99 ≤ 5 ms at 32 clients, ≤ 2 Redis round trips per decision):",
    "",
    ...verdicts(rows),
    "",
    "Notes:",
    "",
    `- Edge rows: CheckPolicy (Connect JSON) with a \`check\` API key: the key is verified from its Redis record (cached per isolate for KEY_CACHE_TTL_MS, default 2 s), the tenant's published bundle is loaded from Redis (revalidated every POLICY_REFRESH_MS, default 500 ms), the compiled policy runs in a Worker Loader isolate, and a tenant-wide rate limit (RATE_LIMIT rule, ${ctx.rateLimit} requests/minute, never trips) is counted in Redis on every decision. Every reply is checked: HTTP 200, the expected decision and matched rule ids, reason POLICY and the rate limit counted (neither exceeded nor failed).`,
    "- `Redis RT/decision`: HTTP requests the edge's own Upstash-REST server (a separate process in front of the same Redis) received during the measured run, divided by the decisions. The edge's Redis client auto-pipelines, so commands issued in the same tick (also by concurrent requests) share one round trip.",
    "- OPA rows: `opa run --server` with the same version's compiled Rego (GetPolicyVersion.compiled_rego) and the compiler's wrapper module, `POST /v1/data/fulcrum/entry/result` with the policy context the edge builds. No authentication, no rate limit, no Redis: it is the policy evaluation alone behind an HTTP server, a lower bound rather than a like-for-like competitor.",
    "- `wrangler dev` puts its dev proxy (a second workerd) in front of the Worker; `edge (workerd)` is the deploy bundle under a bare `workerd serve`, the closest local stand-in for the deployed Worker (still not Cloudflare's edge: no network, no TLS, local Redis behind a Node REST server instead of Upstash).",
    "- `target CPU ms/decision`: CPU time of the target's processes during the run divided by its decisions (the service time a saturated single-threaded Worker isolate cannot go below; at c=1 it includes idle polling).",
    "- `cpu`: % of one core during the run: the load generator (this process; the idle management API also lives here), the target's processes (workerd; wrangler with its two workerd; OPA), the edge's Upstash-REST server (a Node process: JSON over HTTP ↔ RESP; Upstash does this work in production, off the machine), and the rest of the machine outside the benchmark's processes (Redis itself when it was already running, other work; idle targets are in none of the four). A large `other` means the row was disturbed: rerun on a quiet machine.",
  ];
  const disturbed = rows.filter((r) => r.cpu.other > 25);
  if (disturbed.length > 0) {
    out.push(
      "",
      `WARNING: processes outside the benchmark used > 25% of a core during ${disturbed.map((r) => `${r.target} c=${r.concurrency}`).join(", ")}: those rows are disturbed, rerun on a quiet machine.`,
    );
  }
  const failed = rows.filter((r) => r.errors > 0);
  for (const r of failed) {
    out.push("", `errors in ${r.target} c=${r.concurrency}: ${r.errorSamples.join(" | ")}`);
  }
  return out.join("\n");
}
