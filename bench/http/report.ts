/** Formatting of the HTTP benchmark's tables. */
import { cpus, platform, release } from "node:os";
import type { HttpBenchRow } from "../http-e2e.js";
import { SCENARIOS } from "./scenarios.js";
import { TARGETS } from "./targets.js";

export const fmt = (n: number, digits = 2) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const pct = (n: number) => (Number.isFinite(n) ? `${Math.round(n)}%` : "n/a");

function table(header: string[], body: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join(" | ")} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `:${"-".repeat(w + 1)}` : `${"-".repeat(w + 1)}:`)).join("|")}|`;
  return [line(header), rule, ...body.map(line)].join("\n");
}

export function formatReport(rows: HttpBenchRow[], clientKind: string, warmup: number): string {
  const concurrencies = [...new Set(rows.map((r) => r.concurrency))];
  const counts = concurrencies
    .map((c) => `c=${c}: ${rows.find((r) => r.concurrency === c)?.requests}`)
    .join(", ");
  const cpu = cpus();
  const out: string[] = [
    "HTTP end-to-end: EvaluatePolicy over loopback (127.0.0.1)",
    `machine: ${cpu.length} cores (${cpu[0]?.model.trim() ?? "unknown cpu"}), ${platform()} ${release()}, node ${process.version}`,
    `load: closed loop, ${clientKind} keep-alive, load generator ON THE SAME MACHINE (competes with the servers for the ${cpu.length} cores)`,
    `requests per run: ${counts} (after ${warmup} warm-up requests); round-robin over ${SCENARIOS.length} decisions: ${SCENARIOS.map((s) => s.expected).join(" / ")}`,
    "",
    table(
      [
        "target",
        "c",
        "p50 ms",
        "p99 ms",
        "mean ms",
        "req/s",
        "errors",
        "cpu: client/servers/other",
      ],
      rows.map((r) => [
        r.target,
        String(r.concurrency),
        fmt(r.p50Ms),
        fmt(r.p99Ms),
        fmt(r.meanMs),
        String(Math.round(r.reqPerSec)),
        String(r.errors),
        [r.cpu.client, r.cpu.servers, r.cpu.other].map(pct).join(" / "),
      ]),
    ),
  ];

  const ratioRows: string[][] = [];
  for (const edge of [TARGETS.wrangler, TARGETS.workerd]) {
    for (const c of concurrencies) {
      const e = rows.find((r) => r.target === edge && r.concurrency === c);
      const o = rows.find((r) => r.target === TARGETS.opa && r.concurrency === c);
      if (!e || !o) continue;
      ratioRows.push([
        `${edge} / OPA`,
        String(c),
        `${fmt(e.p99Ms / o.p99Ms)}x`,
        `${fmt(e.reqPerSec / o.reqPerSec)}x`,
      ]);
    }
  }
  if (ratioRows.length > 0) {
    out.push(
      "",
      "ratios (p99: < 1 means the edge's tail is lower than OPA's; req/s: > 1 means the edge serves more)",
      "",
      table(["ratio", "c", "p99", "req/s"], ratioRows),
    );
  }
  const disturbed = rows.filter((r) => r.cpu.other > 25);
  if (disturbed.length > 0) {
    out.push(
      "",
      `WARNING: other processes used > 25% of a core during ${disturbed.map((r) => `${r.target} c=${r.concurrency}`).join(", ")}: those rows are disturbed, rerun on a quiet machine.`,
    );
  }
  const failed = rows.filter((r) => r.errors > 0);
  for (const r of failed) {
    out.push("", `errors in ${r.target} c=${r.concurrency}: ${r.errorSamples.join(" | ")}`);
  }
  return out.join("\n");
}
