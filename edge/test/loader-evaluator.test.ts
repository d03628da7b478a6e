import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { FulcrumError } from "../../core/errors/fulcrum-error.js";
import type { PublishedPolicy } from "../../core/policy-bundle/published-policy.js";
import evaluatorSource from "../build/policy-evaluator.bundle";
import type { TenantBundle } from "../src/distribution/tenant-bundle.js";
import type { BundleEvaluationRequest } from "../src/evaluation/bundle-evaluator.js";
import { LoaderEvaluator } from "../src/evaluation/loader-evaluator.js";
// Compiled by scripts/build-evaluator-fixtures.ts from the .rego files beside them.
import deletesWasm from "./fixtures/evaluator/deletes.wasm.bin";
import paymentsWasm from "./fixtures/evaluator/payments.wasm.bin";
import shas from "./fixtures/evaluator/wasm-sha256.json";

const LOADER = (env as unknown as { LOADER: WorkerLoader }).LOADER;

const meta = (overrides: Partial<PublishedPolicy>): PublishedPolicy => ({
  tenant_id: "t1",
  policy_id: "p",
  name: "",
  version: 1,
  sha256: "0".repeat(64),
  wasm_sha256: shas.deletes,
  entrypoint: "fulcrum/entry/result",
  source_kind: "rego",
  enforcement: "BLOCK",
  dry_run: false,
  priority: 0,
  scope: {},
  ...overrides,
});

const DELETES = meta({ policy_id: "deletes", name: "Deletes", version: 2, priority: 10 });
const PAYMENTS = meta({ policy_id: "payments", wasm_sha256: shas.payments });

let digests = 0;
function bundle(policies: PublishedPolicy[], wasm?: Map<string, Uint8Array>): TenantBundle {
  return {
    tenantId: "t1",
    generation: 1,
    // A fresh isolate per bundle built here unless a test reuses the bundle.
    digest: `test-${++digests}-${"0".repeat(32)}`,
    policies,
    wasm:
      wasm ??
      new Map([
        [shas.deletes, new Uint8Array(deletesWasm)],
        [shas.payments, new Uint8Array(paymentsWasm)],
      ]),
    rateLimits: [],
  };
}

const NOW = Date.parse("2026-06-01T00:00:00Z");
const request = (overrides: Partial<BundleEvaluationRequest> = {}): BundleEvaluationRequest => ({
  context: { tool_names: ["delete_db", "pay"], input_text: "a long prompt" },
  policyIds: [],
  dryRun: false,
  nowMs: NOW,
  ...overrides,
});

/** LOADER, counting the isolates it is asked for and the ones it had to build. */
function countingLoader() {
  const counts = { gets: 0, builds: 0 };
  const loader: WorkerLoader = {
    get: (id, code) => {
      counts.gets++;
      return LOADER.get(id, () => {
        counts.builds++;
        return code();
      });
    },
    load: (code) => LOADER.load(code),
  };
  return { loader, counts };
}

const internal = expect.objectContaining({
  kind: "Internal",
  message: "policy evaluation failed",
});

describe("LoaderEvaluator (Worker Loader isolate, real compiled policies)", () => {
  const evaluator = new LoaderEvaluator(LOADER, evaluatorSource);

  it("evaluates every policy of the bundle and combines them", async () => {
    const { output, durationMs } = await evaluator.evaluate(bundle([DELETES, PAYMENTS]), request());
    expect(durationMs).toBeGreaterThanOrEqual(0);
    expect([output.decision, output.would_decide]).toEqual(["DENY", "DENY"]);
    expect(output.results.map((r) => [r.policy_id, r.policy_version, r.decision])).toEqual([
      ["deletes", "2", "DENY"],
      ["payments", "1", "REQUIRE_APPROVAL"],
    ]);
    expect(output.reasons).toEqual([
      "deletes are blocked (rule no-delete of policy deletes)",
      "large prompt (rule big of policy deletes)",
      "payments need approval (rule pay of policy payments)",
      "tool call seen (rule seen of policy payments)",
    ]);
    expect(output.matched_rules.map((m) => [m.policy_id, m.rule_id, m.action])).toEqual([
      ["deletes", "no-delete", "DENY"],
      ["deletes", "big", "WARN"],
      ["payments", "pay", "REQUIRE_APPROVAL"],
      ["payments", "seen", "AUDIT"],
    ]);
    expect(output.actions.map((a) => a.type)).toEqual([
      "DENY",
      "WARN",
      "REQUIRE_APPROVAL",
      "AUDIT",
    ]);
  });

  it("evaluates the named policies in the named order, dry runs and scope included", async () => {
    const b = bundle([DELETES, { ...PAYMENTS, scope: { workflow_ids: ["w1"] } }]);
    const named = await evaluator.evaluate(b, request({ policyIds: ["payments", "deletes"] }));
    expect(named.output.results.map((r) => [r.policy_id, r.message])).toEqual([
      ["payments", "not applicable: the context is outside the policy scope (workflow_ids)"],
      ["deletes", "DENY: deletes are blocked; large prompt"],
    ]);
    const dry = await evaluator.evaluate(b, request({ dryRun: true, policyIds: ["deletes"] }));
    expect([dry.output.decision, dry.output.would_decide]).toEqual(["ALLOW", "DENY"]);
    expect(dry.output.reasons[0]).toBe(
      "dry run: deletes are blocked (rule no-delete of policy deletes)",
    );
  });

  it("shares one wasm between policies and one isolate between requests of a bundle", async () => {
    const { loader, counts } = countingLoader();
    const shared = new LoaderEvaluator(loader, evaluatorSource);
    const warnOnly = { ...DELETES, policy_id: "deletes-warn", enforcement: "WARN" as const };
    const b = bundle([DELETES, warnOnly]);
    for (let i = 0; i < 3; i++) {
      const { output } = await shared.evaluate(b, request({ policyIds: ["deletes-warn"] }));
      expect(output.decision).toBe("WARN");
    }
    expect(counts).toEqual({ gets: 3, builds: 1 });
  });

  it("is NotFound for a policy the bundle lacks, without starting an isolate", async () => {
    const { loader, counts } = countingLoader();
    const outcome = await new LoaderEvaluator(loader, evaluatorSource)
      .evaluate(bundle([DELETES]), request({ policyIds: ["deletes", "gone"] }))
      .catch((e: unknown) => e);
    expect(outcome).toBeInstanceOf(FulcrumError);
    expect(outcome).toMatchObject({
      kind: "NotFound",
      message: 'policy "gone" is not active for this tenant',
    });
    expect(counts.gets).toBe(0);
  });

  it("is Internal, never an ALLOW, when a policy traps, and keeps serving", async () => {
    const b = bundle([PAYMENTS, DELETES]);
    const trap = request({ context: { attributes: { trap: true } } });
    const outcome = await evaluator.evaluate(b, trap).catch((e: unknown) => e);
    expect(outcome).toEqual(internal);
    expect(String((outcome as Error).cause)).toMatch(/policy "deletes" version 2 failed/);
    const after = await evaluator.evaluate(b, request());
    expect(after.output.decision).toBe("DENY");
  });

  it("is Internal when the bundle lacks a policy's wasm", async () => {
    const b = bundle([DELETES], new Map());
    await expect(evaluator.evaluate(b, request())).rejects.toEqual(internal);
  });

  it("is Internal when the isolate answers something malformed", async () => {
    const liar: WorkerLoader = {
      get: () =>
        ({
          getEntrypoint: () => ({
            evaluate: async () => ({ output: { decision: "ALLOW" }, durationMs: 0 }),
          }),
        }) as unknown as WorkerStub,
      load: () => {
        throw new Error("unused");
      },
    };
    await expect(
      new LoaderEvaluator(liar, evaluatorSource).evaluate(bundle([DELETES]), request()),
    ).rejects.toEqual(internal);
  });

  it("is Internal when the evaluator code does not load", async () => {
    const broken = new LoaderEvaluator(LOADER, "export default {}; syntax error(");
    await expect(broken.evaluate(bundle([DELETES]), request())).rejects.toEqual(internal);
  });

  it("answers quickly once the isolate is loaded", async () => {
    const b = bundle([DELETES, PAYMENTS]);
    await evaluator.evaluate(b, request());
    const n = 200;
    const started = Date.now();
    for (let i = 0; i < n; i++) await evaluator.evaluate(b, request());
    const perCallMs = (Date.now() - started) / n;
    console.log(
      `LoaderEvaluator: ${perCallMs.toFixed(3)} ms per evaluation (2 policies, ${n} calls)`,
    );
    expect(perCallMs).toBeLessThan(20);
  });
});
