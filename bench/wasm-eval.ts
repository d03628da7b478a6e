/**
 * In-process benchmark of the governance wasm bundle's `decision` entrypoint
 * (the governance library over fixture tenants' configurations; the edge now
 * runs tenants' compiled policies instead, see bench/edge.ts):
 * `loadPolicySync(module)`, `setData(prepareTenantData(config))` once per
 * tenant, then `evaluate(input, DECISION_ENTRYPOINT)` and
 * `expandDecision(prepared, raw)` per request. Each call is timed individually,
 * twice per scenario: (a) evaluate() alone (JSON.stringify of the input, the
 * wasm evaluation and JSON.parse of the output) and (b) evaluate() +
 * expandDecision(), what a request to the library pays.
 *
 *   tsx bench/wasm-eval.ts [--iterations N] [--wasm path] [--raw]
 *
 * `--raw` times a bundle whose output is already the full DecisionOutput (an
 * older build, e.g. from git): no expansion, so (b) equals (a).
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import * as opaWasm from "@open-policy-agent/opa-wasm";
import { toDecisionInput } from "../core/policy/decision-input.js";
import { expandDecision } from "../core/policy/expand-decision.js";
import { prepareTenantData } from "../core/policy/prepare-tenant-data.js";
import {
  DECISION_ENTRYPOINT,
  type DecisionInput,
  type DecisionName,
  type DecisionOutput,
  type RawDecisionOutput,
  type TenantConfig,
} from "../core/policy/tenant-config.js";
import {
  type EvaluationContext,
  EvaluationContextSchema,
  Phase,
} from "../proto/gen/fulcrum/policy/v1/evaluation_pb.js";

// As in the edge: the ESM entry exports the synchronous loader on its default export only.
const { loadPolicySync } = (opaWasm as unknown as { default: typeof opaWasm }).default;

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), "..");
const DEFAULT_WASM = join(repoRoot, "policies/build/governance.wasm");
const FIXTURES = join(repoRoot, "policies/fixtures/tenants.json");

export interface Timing {
  meanUs: number;
  p50Us: number;
  p99Us: number;
  maxUs: number;
}

export interface WasmBenchRow extends Timing {
  scenario: string;
  iterations: number;
  /** (b) per request: evaluate() + expandDecision() (the Timing fields above). */
  evalsPerSec: number;
  /** (a) evaluate() alone: wasm + JSON in/out. */
  wasm: Timing;
  /** Decision the scenario produced (checked against the expected one). */
  decision: DecisionName;
  /** Matched rules over all results. */
  matchedRules: number;
  /** JSON sizes crossing the JS/wasm boundary on each call. */
  inputBytes: number;
  outputBytes: number;
}

export interface WasmBenchOptions {
  /** Timed evaluations per scenario (default 50 000). */
  iterations?: number;
  /** Untimed evaluations per scenario before timing (default 5 000). */
  warmup?: number;
  /** Bundle to load (default policies/build/governance.wasm). */
  wasmPath?: string;
  /** The bundle returns the full DecisionOutput: skip expandDecision (default false). */
  raw?: boolean;
}

interface Scenario {
  name: string;
  tenant: string;
  input: DecisionInput;
  expect: DecisionName;
  expectMatched: number;
}

const ctx = (fields: MessageInitShape<typeof EvaluationContextSchema>): EvaluationContext =>
  create(EvaluationContextSchema, fields);

function scenarios(): Scenario[] {
  return [
    {
      name: "1 test CheckPolicy, empty-ish ctx",
      tenant: "test",
      input: toDecisionInput(ctx({ tenantId: "test" }), ["test"], false),
      expect: "ALLOW",
      expectMatched: 0,
    },
    {
      name: "2 test content match",
      tenant: "test",
      input: toDecisionInput(
        ctx({
          tenantId: "test",
          phase: Phase.PRE_LLM_CALL,
          modelId: "gpt-4o",
          inputText: "log in with Password: hunter2 and run the report",
        }),
        ["test"],
        false,
      ),
      expect: "DENY",
      expectMatched: 1,
    },
    {
      name: "3 demo guard, clean tool call",
      tenant: "demo",
      input: toDecisionInput(
        ctx({
          tenantId: "demo",
          workflowId: "wf_1",
          envelopeId: "env_1",
          userId: "u_1",
          userRoles: ["developer"],
          phase: Phase.PRE_TOOL_CALL,
          modelId: "gpt-4o-mini",
          toolNames: ["search", "read_file"],
          inputText: "find the quarterly report for the finance team",
          estimatedCostUsd: 0.02,
        }),
        [],
        false,
      ),
      expect: "ALLOW",
      expectMatched: 0,
    },
    {
      name: "4 demo guard, several matches",
      tenant: "demo",
      input: toDecisionInput(
        ctx({
          tenantId: "demo",
          workflowId: "wf_1",
          envelopeId: "env_2",
          userId: "u_1",
          userRoles: ["developer"],
          phase: Phase.PRE_TOOL_CALL,
          modelId: "llama-3",
          toolNames: ["search", "delete_customer"],
          inputText: "use API-KEY sk-123 and card 4111 1111 1111 1111",
          estimatedCostUsd: 2,
        }),
        [],
        false,
      ),
      expect: "DENY",
      expectMatched: 4,
    },
    {
      name: "5 demo EvaluatePolicies, 3 ids",
      tenant: "demo",
      input: toDecisionInput(
        ctx({
          tenantId: "demo",
          userId: "u_2",
          phase: Phase.PRE_LLM_CALL,
          modelId: "claude-sonnet-4",
          inputText: "summarise this document in three bullet points",
          estimatedCostUsd: 0.1,
        }),
        ["pol_safe_tools", "pol_models", "pol_pii"],
        false,
      ),
      expect: "ALLOW",
      expectMatched: 0,
    },
  ];
}

const us = (ns: bigint | number): number => Number(ns) / 1000;

function timed(iterations: number, samples: Float64Array, call: () => unknown): Timing {
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    call();
    samples[i] = Number(process.hrtime.bigint() - t0);
  }
  const sorted = samples.slice().sort();
  let total = 0;
  for (const v of sorted) total += v;
  const pct = (p: number) => sorted[Math.min(iterations - 1, Math.floor(p * iterations))] ?? 0;
  return {
    meanUs: us(total / iterations),
    p50Us: us(pct(0.5)),
    p99Us: us(pct(0.99)),
    maxUs: us(sorted[iterations - 1] ?? 0),
  };
}

export async function benchWasmEvaluation(options: WasmBenchOptions = {}): Promise<WasmBenchRow[]> {
  const iterations = Math.max(1, options.iterations ?? 50_000);
  const warmup = options.warmup ?? 5_000;
  const module = await WebAssembly.compile(readFileSync(options.wasmPath ?? DEFAULT_WASM));
  const tenants = JSON.parse(readFileSync(FIXTURES, "utf8")) as Record<string, TenantConfig>;

  const rows: WasmBenchRow[] = [];
  const samples = new Float64Array(iterations);
  for (const s of scenarios()) {
    const config = tenants[s.tenant];
    if (!config) throw new Error(`fixture tenant ${s.tenant} missing`);
    const policy = loadPolicySync(module);
    const prepared = prepareTenantData(config);
    policy.setData(prepared);
    const evaluate = () => policy.evaluate(s.input, DECISION_ENTRYPOINT) as [{ result: unknown }];
    const request = options.raw
      ? () => evaluate()[0].result as DecisionOutput
      : () => expandDecision(prepared, evaluate()[0].result as RawDecisionOutput);

    const first = evaluate();
    const output = request();
    const matched = output.matched_rules.length;
    if (
      !process.env.BENCH_NOCHECK &&
      (output.decision !== s.expect || matched !== s.expectMatched)
    ) {
      throw new Error(
        `${s.name}: expected ${s.expect} with ${s.expectMatched} matched rules, got ${output.decision} with ${matched}: ${JSON.stringify(output)}`,
      );
    }

    for (let i = 0; i < warmup; i++) request();
    const wasm = timed(iterations, samples, evaluate);
    const total = timed(iterations, samples, request);
    rows.push({
      scenario: s.name,
      iterations,
      ...total,
      evalsPerSec: 1e6 / total.meanUs,
      wasm,
      decision: output.decision,
      matchedRules: matched,
      inputBytes: new TextEncoder().encode(JSON.stringify(s.input)).length,
      outputBytes: new TextEncoder().encode(JSON.stringify(first)).length,
    });
  }
  return rows;
}

/** The mean per request (b) over all scenarios (each weighted equally). */
export function allScenariosMeanUs(rows: readonly WasmBenchRow[]): number {
  return rows.reduce((sum, r) => sum + r.meanUs, 0) / Math.max(1, rows.length);
}

function printTable(rows: readonly WasmBenchRow[]): void {
  const f = (n: number) => n.toFixed(2).padStart(7);
  const cols = (t: Timing) => `${f(t.meanUs)} ${f(t.p50Us)} ${f(t.p99Us)}`;
  const head = `${"mean µs".padStart(7)} ${"p50".padStart(7)} ${"p99".padStart(7)}`;
  console.log(
    `${"".padEnd(45)} ${"(a) evaluate() alone".padEnd(23)} ${"(b) + expandDecision()".padEnd(23)}`,
  );
  console.log(
    `${"scenario".padEnd(36)} ${"decision".padEnd(8)} ${head} ${head} ${"evals/s".padStart(8)} ${"in B".padStart(5)} ${"out B".padStart(6)}`,
  );
  for (const r of rows) {
    console.log(
      `${r.scenario.padEnd(36)} ${r.decision.padEnd(8)} ${cols(r.wasm)} ${cols(r)} ${Math.round(r.evalsPerSec).toString().padStart(8)} ${String(r.inputBytes).padStart(5)} ${String(r.outputBytes).padStart(6)}`,
    );
  }
  const wasmMean = rows.reduce((sum, r) => sum + r.wasm.meanUs, 0) / Math.max(1, rows.length);
  const mean = allScenariosMeanUs(rows);
  const worst = (t: (r: WasmBenchRow) => number) => f(Math.max(...rows.map(t)));
  console.log(
    `${"all scenarios (p99: worst)".padEnd(36)} ${"".padEnd(8)} ${f(wasmMean)} ${"".padStart(7)} ${worst((r) => r.wasm.p99Us)} ${f(mean)} ${"".padStart(7)} ${worst((r) => r.p99Us)}`,
  );
  console.log(`target mean ≤ 10 µs per request (b): ${mean <= 10 ? "met" : "NOT met"}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const value = (flag: string) => {
    const i = args.indexOf(flag);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const iterations = value("--iterations");
  const rows = await benchWasmEvaluation({
    iterations: iterations ? Number(iterations) : undefined,
    wasmPath: value("--wasm"),
    raw: args.includes("--raw"),
  });
  printTable(rows);
}
