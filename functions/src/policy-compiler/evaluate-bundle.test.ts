/**
 * core/policy-bundle/evaluate-bundle.ts with policies compiled by this compiler (and,
 * for answers the compiler never gives, entry modules built with OPA directly). Here,
 * not in core/, because it needs Node and the OPA binary; core's own test covers the
 * same logic with stand-in instances.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { beforeAll, describe, expect, it } from "vitest";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import {
  type CompiledPolicyInstance,
  loadCompiledPolicy,
} from "../../../core/policy-bundle/compiled-policy.js";
import {
  type EvaluateBundleRequest,
  evaluateBundle,
  PolicyEvaluationError,
  selectPolicies,
} from "../../../core/policy-bundle/evaluate-bundle.js";
import {
  POLICY_ENTRYPOINT,
  type PublishedPolicy,
} from "../../../core/policy-bundle/published-policy.js";
import { meta } from "../../../core/policy-bundle/test-fixtures.js";
import type { TenantBundle } from "../../../edge/src/distribution/tenant-bundle.js";
import { InProcessEvaluator } from "../../../edge/src/evaluation/in-process-evaluator.js";
import { resolveOpa } from "../../../scripts/opa.js";
import { extractFromTar } from "./bundle-tar.js";
import { runProcess } from "./run-process.js";
import { testCompiler } from "./test-support.js";

const DELETES = `package fulcrum.policy

deny contains {"message": "deletes are blocked", "rule_id": "no-delete", "priority": 5} if {
	some tool in input.tool_names
	startswith(tool, "delete_")
}

warn contains {"message": "large prompt", "rule_id": "big"} if count(input.input_text) > 10
`;

const PAYMENTS = `package fulcrum.policy

require_approval contains {"message": "payments need approval", "rule_id": "pay"} if {
	"pay" in input.tool_names
}

audit contains {"message": "tool call seen", "rule_id": "seen"} if count(input.tool_names) > 0
`;

// A complete rule with two values: OPA aborts the evaluation (a trap).
const CONFLICT = `package fulcrum.policy

x := 1 if input.a
x := 2 if input.a

deny contains "boom" if x > 0
`;

/** Built without the wrapper module: entrypoint values the compiler would never emit. */
const RAW_ENTRIES = {
  notSets: `package fulcrum.entry\n\nresult := {"deny": "not a list", "warn": [], "require_approval": [], "audit": []}\n`,
  undefinedResult: `package fulcrum.entry\n\nresult := {"deny": []} if input.never\n`,
  notAnItem: `package fulcrum.entry\n\nresult := {"deny": [{"text": "no message"}], "warn": [], "require_approval": [], "audit": []}\n`,
};

async function buildRawEntry(source: string): Promise<Uint8Array> {
  const opa = await resolveOpa();
  const dir = await mkdtemp(join(tmpdir(), "fulcrum-raw-"));
  try {
    await writeFile(join(dir, "entry.rego"), source);
    const args = ["build", "-t", "wasm", "-e", POLICY_ENTRYPOINT, "-o", "b.tar.gz", "entry.rego"];
    const build = await runProcess(opa, args, { cwd: dir, timeoutMs: 30_000 });
    if (build.code !== 0) throw new Error(build.stderr);
    const wasm = extractFromTar(gunzipSync(await readFile(join(dir, "b.tar.gz"))), "policy.wasm");
    if (!wasm) throw new Error("no policy.wasm");
    return wasm;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const NOW = Date.parse("2026-06-01T00:00:00Z");
const instances = new Map<string, CompiledPolicyInstance>();
const wasmBytes = new Map<string, Uint8Array>();

const A = meta({ policy_id: "a", name: "Deletes", wasm_sha256: "a".repeat(64), priority: 10 });
const B = meta({ policy_id: "b", name: "Payments", wasm_sha256: "b".repeat(64), version: 1 });
const TRAP = meta({ policy_id: "trap", wasm_sha256: "c".repeat(64) });
const malformed = (key: keyof typeof RAW_ENTRIES) =>
  meta({ policy_id: key, wasm_sha256: `${key}`.padEnd(64, "0") });

const request = (overrides: Partial<EvaluateBundleRequest> = {}): EvaluateBundleRequest => ({
  context: { tool_names: ["delete_db", "pay"], input_text: "a long prompt" },
  policyIds: [],
  dryRun: false,
  nowMs: NOW,
  ...overrides,
});

beforeAll(async () => {
  const compiler = await testCompiler();
  for (const [m, regoSource] of [
    [A, DELETES],
    [B, PAYMENTS],
    [TRAP, CONFLICT],
  ] as const) {
    const { wasm } = await compiler.compile({ kind: "rego", regoSource });
    wasmBytes.set(m.wasm_sha256, wasm);
    instances.set(m.wasm_sha256, await loadCompiledPolicy(wasm));
  }
  for (const key of Object.keys(RAW_ENTRIES) as (keyof typeof RAW_ENTRIES)[]) {
    const wasm = await buildRawEntry(RAW_ENTRIES[key]);
    instances.set(malformed(key).wasm_sha256, await loadCompiledPolicy(wasm));
  }
}, 120_000);

describe("evaluateBundle", () => {
  it("combines every policy's result in bundle order, as the governance library does", () => {
    const { output, durationMs } = evaluateBundle(instances, [A, B], request());
    expect(durationMs).toBeGreaterThanOrEqual(0);
    expect(output.decision).toBe("DENY");
    expect(output.would_decide).toBe("DENY");
    expect(output.results.map((r) => [r.policy_id, r.policy_version, r.policy_name])).toEqual([
      ["a", "3", "Deletes"],
      ["b", "1", "Payments"],
    ]);
    expect(output.results.map((r) => r.decision)).toEqual(["DENY", "REQUIRE_APPROVAL"]);
    expect(output.matched_rules).toEqual([
      {
        matched_conditions: [],
        action: "DENY",
        reason: "deletes are blocked",
        rule_name: "",
        policy_id: "a",
        priority: 5,
        rule_id: "no-delete",
        rule_type: "CUSTOM",
      },
      expect.objectContaining({ policy_id: "a", rule_id: "big", action: "WARN" }),
      expect.objectContaining({ policy_id: "b", rule_id: "pay", action: "REQUIRE_APPROVAL" }),
      expect.objectContaining({ policy_id: "b", rule_id: "seen", action: "AUDIT" }),
    ]);
    expect(output.reasons).toEqual([
      "deletes are blocked (rule no-delete of policy a)",
      "large prompt (rule big of policy a)",
      "payments need approval (rule pay of policy b)",
      "tool call seen (rule seen of policy b)",
    ]);
    expect(output.actions.map((a) => [a.type, a.message, a.terminal])).toEqual([
      ["DENY", "deletes are blocked", true],
      ["WARN", "large prompt", false],
      ["REQUIRE_APPROVAL", "payments need approval", false],
      ["AUDIT", "tool call seen", false],
    ]);
  });

  it("evaluates the named policies only, in the named order, each once", () => {
    const { output } = evaluateBundle(instances, [A, B], request({ policyIds: ["b", "a", "b"] }));
    expect(output.results.map((r) => r.policy_id)).toEqual(["b", "a"]);
    expect(output.reasons[0]).toBe("payments need approval (rule pay of policy b)");
    expect(output.actions.map((a) => a.type)).toEqual([
      "REQUIRE_APPROVAL",
      "AUDIT",
      "DENY",
      "WARN",
    ]);
    const one = evaluateBundle(instances, [A, B], request({ policyIds: ["b"] })).output;
    expect([one.decision, one.results.length]).toEqual(["REQUIRE_APPROVAL", 1]);
  });

  it("reports a dry-run policy's verdict in would_decide and prefixes its reasons", () => {
    const dryA = { ...A, dry_run: true };
    const { output } = evaluateBundle(instances, [dryA, B], request());
    expect(output.decision).toBe("REQUIRE_APPROVAL");
    expect(output.would_decide).toBe("DENY");
    expect(output.results.map((r) => [r.dry_run, r.decision, r.would_decide])).toEqual([
      [true, "ALLOW", "DENY"],
      [false, "REQUIRE_APPROVAL", "REQUIRE_APPROVAL"],
    ]);
    expect(output.reasons).toEqual([
      "dry run: deletes are blocked (rule no-delete of policy a)",
      "dry run: large prompt (rule big of policy a)",
      "payments need approval (rule pay of policy b)",
      "tool call seen (rule seen of policy b)",
    ]);
    expect(output.actions[0]).toEqual({
      type: "AUDIT",
      message: "dry run: would DENY: deletes are blocked",
      severity: "INFO",
      terminal: false,
    });
  });

  it("evaluates every policy as a dry run when the request is one", () => {
    const { output } = evaluateBundle(instances, [A, B], request({ dryRun: true }));
    expect([output.decision, output.would_decide]).toEqual(["ALLOW", "DENY"]);
    expect(output.results.every((r) => r.dry_run && r.decision === "ALLOW")).toBe(true);
    expect(output.reasons.every((r) => r.startsWith("dry run: "))).toBe(true);
    expect(output.actions.every((a) => a.type === "AUDIT")).toBe(true);
  });

  it("does not evaluate a policy outside its scope or effective window", () => {
    const scoped = { ...A, scope: { workflow_ids: ["w1"] } };
    const expired = { ...B, expires_at: "2026-01-01T00:00:00Z" };
    // The trapping policy is never run: its scope excludes the context.
    const trap = { ...TRAP, scope: { phases: ["POST_EXECUTION" as const] } };
    const { output } = evaluateBundle(
      instances,
      [scoped, expired, trap],
      request({
        context: {
          tool_names: ["delete_db", "pay"],
          workflow_id: "w2",
          phase: "PRE_EXECUTION",
          a: true,
        } as never,
      }),
    );
    expect(output.decision).toBe("ALLOW");
    expect(output.matched_rules).toEqual([]);
    expect(output.results.map((r) => r.message)).toEqual([
      "not applicable: the context is outside the policy scope (workflow_ids)",
      "not applicable: the policy expired at 2026-01-01T00:00:00Z",
      "not applicable: the context is outside the policy scope (phases)",
    ]);
    const early = { ...A, effective_at: "2026-06-01T00:00:00.001Z" };
    const r = evaluateBundle(instances, [early], request()).output.results[0];
    expect(r?.message).toBe(
      "not applicable: the policy is not in effect before 2026-06-01T00:00:00.001Z",
    );
    const inEffect = evaluateBundle(
      instances,
      [{ ...early, effective_at: "2026-06-01T00:00:00Z" }],
      request(),
    );
    expect(inEffect.output.decision).toBe("DENY");
  });

  it("allows when no policy matches, and when the bundle is empty", () => {
    const quiet = evaluateBundle(instances, [A, B], request({ context: {} })).output;
    expect([quiet.decision, quiet.would_decide, quiet.reasons]).toEqual(["ALLOW", "ALLOW", []]);
    expect(quiet.results.map((r) => r.message)).toEqual(["no rule matched", "no rule matched"]);
    expect(evaluateBundle(instances, [], request()).output.results).toEqual([]);
  });

  it("throws NotFound, naming every missing policy, before evaluating anything", () => {
    const one = () => evaluateBundle(instances, [A, TRAP], request({ policyIds: ["a", "x"] }));
    expect(one).toThrow(FulcrumError);
    expect(one).toThrow(expect.objectContaining({ kind: "NotFound" }));
    expect(one).toThrow('policy "x" is not active for this tenant');
    expect(() => selectPolicies([A], ["x", "y", "x"])).toThrow(
      'policies "x", "y" are not active for this tenant',
    );
  });

  it("throws, never allows, when a policy traps", () => {
    const run = () =>
      evaluateBundle(instances, [B, TRAP], request({ context: { a: true } as never }));
    expect(run).toThrow(PolicyEvaluationError);
    expect(run).toThrow(/policy "trap" version 3 failed: .*var assignment conflict/);
    try {
      run();
    } catch (e) {
      expect((e as PolicyEvaluationError).wasmSha256).toBe(TRAP.wasm_sha256);
    }
    // The instance still answers afterwards.
    const after = evaluateBundle(instances, [TRAP], request({ context: {} }));
    expect(after.output.decision).toBe("ALLOW");
  });

  it.each(Object.keys(RAW_ENTRIES) as (keyof typeof RAW_ENTRIES)[])(
    "throws, never allows, when a policy answers malformed (%s)",
    (key) => {
      const m = malformed(key);
      expect(() => evaluateBundle(instances, [A, m], request({ context: {} }))).toThrow(
        new RegExp(`policy "${key}" version 3 failed`),
      );
    },
  );

  it("throws when a policy's wasm is not loaded", () => {
    const missing: PublishedPolicy = { ...A, wasm_sha256: "f".repeat(64) };
    expect(() => evaluateBundle(instances, [missing], request())).toThrow(
      /policy "a" version 3 failed: wasm f{64} is not loaded/,
    );
  });
});

describe("InProcessEvaluator", () => {
  const bundle = (policies: PublishedPolicy[]): TenantBundle => ({
    tenantId: "t1",
    generation: 1,
    digest: "d".repeat(64),
    policies,
    wasm: wasmBytes,
    rateLimits: [],
  });

  it("answers as evaluateBundle does", async () => {
    const evaluator = new InProcessEvaluator();
    const b = bundle([A, B]);
    for (const r of [request(), request({ policyIds: ["b"], dryRun: true })]) {
      const { output } = await evaluator.evaluate(b, r);
      expect(output).toEqual(evaluateBundle(instances, [A, B], r).output);
    }
    expect(evaluator.size).toBe(2);
  });

  it("is NotFound for a policy the bundle lacks", async () => {
    await expect(
      new InProcessEvaluator().evaluate(bundle([A]), request({ policyIds: ["b"] })),
    ).rejects.toMatchObject({
      kind: "NotFound",
      message: 'policy "b" is not active for this tenant',
    });
  });

  it("is Internal, never an ALLOW, on a trap or missing wasm, and keeps serving", async () => {
    const evaluator = new InProcessEvaluator();
    const b = bundle([B, TRAP]);
    const trap = request({ context: { a: true } as never });
    const outcome = await evaluator.evaluate(b, trap).catch((e: unknown) => e);
    expect(outcome).toBeInstanceOf(FulcrumError);
    expect(outcome).toMatchObject({ kind: "Internal", message: "policy evaluation failed" });
    expect((outcome as Error).cause).toBeInstanceOf(PolicyEvaluationError);
    expect((await evaluator.evaluate(b, request({ context: {} }))).output.decision).toBe("ALLOW");
    const lost = { ...A, wasm_sha256: "e".repeat(64) };
    await expect(evaluator.evaluate(bundle([lost]), request())).rejects.toMatchObject({
      kind: "Internal",
    });
  });

  it("keeps at most maxInstances instances", async () => {
    const evaluator = new InProcessEvaluator({ maxInstances: 1 });
    await evaluator.evaluate(bundle([A, B]), request());
    expect(evaluator.size).toBe(1);
    expect((await evaluator.evaluate(bundle([A, B]), request())).output.decision).toBe("DENY");
  });

  it("measures: evaluations of two compiled policies per millisecond", async () => {
    const evaluator = new InProcessEvaluator();
    const b = bundle([A, B]);
    await evaluator.evaluate(b, request());
    const n = 2_000;
    const started = performance.now();
    for (let i = 0; i < n; i++) await evaluator.evaluate(b, request());
    const perCall = (performance.now() - started) / n;
    console.log(
      `InProcessEvaluator: ${(perCall * 1000).toFixed(1)} µs per evaluation (2 policies)`,
    );
    expect(perCall).toBeLessThan(5);
  });
});
