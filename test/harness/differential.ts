import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { create } from "@bufbuild/protobuf";
import * as opaWasm from "@open-policy-agent/opa-wasm";
import { toDecisionInput } from "../../core/policy/decision-input.js";
import { expandDecision } from "../../core/policy/expand-decision.js";
import {
  type PreparedTenantData,
  prepareTenantData,
} from "../../core/policy/prepare-tenant-data.js";
import {
  DECISION_ENTRYPOINT,
  type DecisionInput,
  type DecisionOutput,
  type RawDecisionOutput,
  type TenantConfig,
} from "../../core/policy/tenant-config.js";
import { EvaluationContextSchema, Phase } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { freePort, waitForHttp } from "../../scripts/lib/ports.js";
import { repoRoot, resolveOpa } from "../../scripts/opa.js";
import type { EvaluationCase } from "./policy-cases.js";

/**
 * Helpers of the differential test (test/e2e/differential.test.ts): the
 * governance library (policies/fulcrum/governance) evaluated two ways over the
 * same prepared tenant data and the same input —
 *
 * - in process, the compiled policies/build/governance.wasm through
 *   @open-policy-agent/opa-wasm, exactly as bench/wasm-eval.ts loads it
 *   (loadPolicySync, setData(prepareTenantData(config)), evaluate at
 *   DECISION_ENTRYPOINT, expandDecision);
 * - `opa run --server` with the Rego sources the wasm was built from
 *   (policies/build/manifest.json), queried at the same entrypoint over HTTP —
 *
 * and the report of the first differing path.
 */

// As in bench/wasm-eval.ts: the ESM entry exports the synchronous loader on its default export only.
const { loadPolicySync } = (opaWasm as unknown as { default: typeof opaWasm }).default;

const buildDir = join(repoRoot, "policies", "build");

interface Manifest {
  entrypoint: string;
  sha256: string;
  modules: string[];
}

/** policies/build/manifest.json: which Rego modules governance.wasm was built from. */
export function buildManifest(): Manifest {
  return JSON.parse(readFileSync(join(buildDir, "manifest.json"), "utf8")) as Manifest;
}

/** The Rego sources of the wasm (paths under policies/). */
export const governanceModules = (): string[] =>
  buildManifest().modules.map((m) => join(repoRoot, "policies", m));

// ---------------------------------------------------------------------------
// The request: the edge's own mapping of a context to the decision input.

function contextOf(c: EvaluationCase) {
  return create(EvaluationContextSchema, {
    ...c.context,
    phase: c.context.phase ? Phase[c.context.phase as keyof typeof Phase] : Phase.UNSPECIFIED,
  });
}

/** The `input` both sides evaluate. */
export const inputOf = (c: EvaluationCase): DecisionInput =>
  toDecisionInput(contextOf(c), c.policyIds, c.dryRun);

// ---------------------------------------------------------------------------
// Side 1: the compiled library in process.

export interface WasmGovernance {
  /** sha256 of the loaded bundle. */
  sha256: string;
  /** Raw output of the decision entrypoint for `input` over `prepared`. */
  evaluate(prepared: PreparedTenantData, input: DecisionInput): RawDecisionOutput;
}

export async function loadWasmGovernance(
  wasmPath = join(buildDir, "governance.wasm"),
): Promise<WasmGovernance> {
  const bytes = readFileSync(wasmPath);
  const module = await WebAssembly.compile(bytes);
  // One instance per tenant, data set once, as the edge did.
  const instances = new Map<PreparedTenantData, ReturnType<typeof loadPolicySync>>();
  return {
    sha256: createHash("sha256").update(bytes).digest("hex"),
    evaluate(prepared, input) {
      let policy = instances.get(prepared);
      if (!policy) {
        policy = loadPolicySync(module);
        policy.setData(prepared);
        instances.set(prepared, policy);
      }
      const [first] = policy.evaluate(input, DECISION_ENTRYPOINT) as [{ result: unknown }];
      return first.result as RawDecisionOutput;
    },
  };
}

// ---------------------------------------------------------------------------
// Side 2: OPA's own evaluator, as a server.

export interface OpaServer {
  url: string;
  /** Replaces the server's base data document with `prepared`. */
  setData(prepared: PreparedTenantData): Promise<void>;
  /** Raw output of the decision entrypoint for `input` over the current data. */
  evaluate(input: DecisionInput): Promise<RawDecisionOutput>;
  stop(): Promise<void>;
}

export async function startOpaServer(modules: string[]): Promise<OpaServer> {
  const bin = await resolveOpa();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child: ChildProcess = spawn(
    bin,
    ["run", "--server", "--addr", `127.0.0.1:${port}`, "--log-level", "error", ...modules],
    { cwd: repoRoot, stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString("utf8");
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    await waitForHttp(`${url}/health`, 20_000);
  } catch (error) {
    child.kill();
    throw new Error(`opa run --server did not come up: ${String(error)}\n${stderr}`);
  }
  async function call(method: string, path: string, body: unknown) {
    const response = await fetch(`${url}${path}`, {
      method,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    const text = await response.text();
    if (!response.ok) throw new Error(`OPA ${method} ${path}: ${response.status} ${text}`);
    return text ? (JSON.parse(text) as Record<string, unknown>) : {};
  }
  return {
    url,
    async setData(prepared) {
      await call("PUT", "/v1/data", prepared);
    },
    async evaluate(input) {
      const reply = await call("POST", `/v1/data/${DECISION_ENTRYPOINT}`, { input });
      if (!("result" in reply))
        throw new Error(`OPA left the decision undefined: ${JSON.stringify(reply)}`);
      return reply.result as RawDecisionOutput;
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill();
        await exited;
      }
    },
  };
}

// ---------------------------------------------------------------------------
// One tenant's cases through both sides.

export interface Pair {
  c: EvaluationCase;
  input: DecisionInput;
  wasm: { raw: RawDecisionOutput; decision: DecisionOutput };
  opa: { raw: RawDecisionOutput; decision: DecisionOutput };
}

/**
 * Every case through both evaluators, a tenant at a time (the server holds one
 * base document): the raw entrypoint values and their expansion. Expansion
 * throws on an output that does not fit the data, which fails the test.
 */
export async function evaluatePairs(
  configs: Record<string, TenantConfig>,
  cases: EvaluationCase[],
  wasm: WasmGovernance,
  opa: OpaServer,
): Promise<Pair[]> {
  const pairs: Pair[] = [];
  for (const [tenantId, config] of Object.entries(configs)) {
    const prepared = prepareTenantData(config);
    await opa.setData(prepared);
    const own = cases.filter((c) => c.tenantId === tenantId);
    const fromOpa = await Promise.all(own.map((c) => opa.evaluate(inputOf(c))));
    own.forEach((c, i) => {
      const input = inputOf(c);
      const wasmRaw = wasm.evaluate(prepared, input);
      const opaRaw = fromOpa[i] as RawDecisionOutput;
      pairs.push({
        c,
        input,
        wasm: { raw: wasmRaw, decision: expandDecision(prepared, wasmRaw) },
        opa: { raw: opaRaw, decision: expandDecision(prepared, opaRaw) },
      });
    });
  }
  return pairs;
}

// ---------------------------------------------------------------------------
// Comparison and report.

/** JSON with object keys sorted: key order is not part of the contract. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}

/** The path of the first difference between two JSON values, for the report. */
export function firstDifference(a: unknown, b: unknown, path = "$"): string | undefined {
  if (canonical(a) === canonical(b)) return undefined;
  if (a && b && typeof a === "object" && typeof b === "object") {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      const d = firstDifference(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`,
      );
      if (d) return d;
    }
  }
  return `${path}: opa ${JSON.stringify(a)} vs wasm ${JSON.stringify(b)}`;
}
