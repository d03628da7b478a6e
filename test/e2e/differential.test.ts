import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildManifest,
  canonical,
  evaluatePairs,
  firstDifference,
  governanceModules,
  loadWasmGovernance,
  type OpaServer,
  type Pair,
  startOpaServer,
  type WasmGovernance,
} from "../harness/differential.js";
import { generateCases } from "../harness/policy-cases.js";

/**
 * Differential test of the governance library: for a few hundred generated
 * tenant configurations and requests, the compiled policies/build/governance.wasm
 * evaluated in process through @open-policy-agent/opa-wasm (as bench/wasm-eval.ts
 * does: setData(prepareTenantData(config)), the decision entrypoint,
 * expandDecision) gives exactly what OPA's own evaluator, `opa run --server`
 * with the Rego sources the wasm was built from, gives on the same data and
 * input. What this catches: wasm builtins (regex, glob) or the wasm compiler
 * disagreeing with OPA, and a governance.wasm stale against its sources. No
 * edge is involved (the edge no longer evaluates this library).
 */
const SEED = Number(process.env.FULCRUM_DIFF_SEED ?? 20261124);
const TENANTS = 60;
const PER_TENANT = 5;

const { configs, cases } = generateCases(SEED, TENANTS, PER_TENANT);
let wasm: WasmGovernance;
let opa: OpaServer;
let pairs: Pair[];

beforeAll(async () => {
  wasm = await loadWasmGovernance();
  opa = await startOpaServer(governanceModules());
  pairs = await evaluatePairs(configs, cases, wasm, opa);
}, 120_000);

afterAll(async () => {
  await opa?.stop();
});

describe(`differential: governance.wasm in process vs opa run --server (${cases.length} cases, seed ${SEED})`, () => {
  it("loads the bundle the manifest describes, so the server runs its sources", () => {
    expect(wasm.sha256).toBe(buildManifest().sha256);
    expect(buildManifest().entrypoint).toBe("fulcrum/governance/decision");
  });

  it("covers every decision, with and without named policies", () => {
    // Guards the generator: a differential test over only ALLOWs would prove little.
    expect(cases.length).toBeGreaterThanOrEqual(300);
    expect(cases.some((c) => c.policyIds.length === 0)).toBe(true);
    expect(cases.some((c) => c.policyIds.length > 1)).toBe(true);
    expect(pairs).toHaveLength(cases.length);
    expect(new Set(pairs.map((p) => p.opa.decision.decision))).toEqual(
      new Set(["ALLOW", "WARN", "REQUIRE_APPROVAL", "DENY"]),
    );
    // At least a fifth of the cases must exercise matched rules, not only empty ALLOWs.
    const matching = pairs.filter((p) => p.opa.decision.matched_rules.length > 0);
    expect(matching.length).toBeGreaterThan(cases.length / 5);
  });

  it("gives the same raw entrypoint value and the same expanded decision for every case", () => {
    const mismatches = pairs.filter(
      (p) =>
        canonical(p.opa.raw) !== canonical(p.wasm.raw) ||
        canonical(p.opa.decision) !== canonical(p.wasm.decision),
    );
    for (const m of mismatches.slice(0, 3)) {
      console.log(
        JSON.stringify(
          {
            difference: firstDifference(m.opa.raw, m.wasm.raw),
            case: m.c,
            input: m.input,
            config: configs[m.c.tenantId],
            opa: m.opa.raw,
            wasm: m.wasm.raw,
          },
          null,
          2,
        ),
      );
    }
    expect(
      mismatches.map(
        (m) =>
          `${m.c.tenantId}: ${firstDifference(m.opa.raw, m.wasm.raw) ?? firstDifference(m.opa.decision, m.wasm.decision)}`,
      ),
    ).toEqual([]);
  });
});
