import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { meta } from "../../../core/policy-bundle/test-fixtures.js";
import { Decision } from "../../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import type { CompiledPolicy } from "../policy-compiler/index.js";
import { testCompiler } from "../policy-compiler/test-support.js";
import {
  createEvaluationSandbox,
  type EvaluationSandbox,
  SandboxEvaluationError,
  SandboxLimitError,
} from "./evaluation-sandbox.js";
import { PATHOLOGICAL_REGO, SLOW_REGO } from "./test-policies.js";

const DENY_DELETE = `package fulcrum.policy

deny contains "deletes are blocked" if {
	some tool in input.tool_names
	startswith(tool, "delete_")
}
`;

const NOW = new Date("2026-06-01T00:00:00Z");
const compile = async (regoSource: string) =>
  (await testCompiler()).compile({ kind: "rego", regoSource });

describe("the evaluation sandbox", () => {
  let sandbox: EvaluationSandbox;
  let deny: CompiledPolicy;

  beforeAll(async () => {
    sandbox = createEvaluationSandbox({ timeoutMs: 2_000 });
    deny = await compile(DENY_DELETE);
  });
  afterAll(async () => sandbox.close());

  it("evaluates a policy in a worker", async () => {
    const job = { wasm: deny.wasm, meta: meta(), now: NOW };
    const denied = await sandbox.evaluate({ ...job, context: { tool_names: ["delete_db"] } });
    expect(denied.decision).toBe(Decision.DENY);
    expect(denied.message).toMatch(/deletes are blocked/);
    expect(denied.evaluatedAt?.seconds).toBe(BigInt(NOW.getTime() / 1000));
    const allowed = await sandbox.evaluate({ ...job, context: { tool_names: ["read"] } });
    expect(allowed.decision).toBe(Decision.ALLOW);
  });

  it("reuses its workers: a warm evaluation costs a few ms", async () => {
    const job = { wasm: deny.wasm, meta: meta(), now: NOW, context: {} };
    await sandbox.evaluate(job);
    const runs = 20;
    const started = performance.now();
    for (let i = 0; i < runs; i++) await sandbox.evaluate(job);
    const perCall = (performance.now() - started) / runs;
    console.info(`sandboxed dry-run evaluation, warm: ${perCall.toFixed(2)} ms per call`);
    expect(perCall).toBeLessThan(50);
    expect(sandbox.size).toBeLessThanOrEqual(2);
  });

  it("stops a policy that runs out of memory or time, without blocking this thread", async () => {
    for (const source of [PATHOLOGICAL_REGO, SLOW_REGO]) {
      const wasm = (await compile(source)).wasm;
      const started = performance.now();
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 50);
      const error = await sandbox
        .evaluate({ wasm, meta: meta(), now: NOW, context: {} })
        .catch((e: unknown) => e);
      clearInterval(ticker);
      const elapsed = performance.now() - started;
      expect(error).toBeInstanceOf(SandboxLimitError);
      expect(elapsed).toBeLessThan(3_000);
      // The event loop kept turning while the policy ran.
      expect(ticks).toBeGreaterThanOrEqual(Math.floor(elapsed / 50) - 5);
    }
    // The pool recovers: the next evaluation gets a fresh worker.
    const ok = await sandbox.evaluate({
      wasm: deny.wasm,
      meta: meta(),
      now: NOW,
      context: { tool_names: ["delete_x"] },
    });
    expect(ok.decision).toBe(Decision.DENY);
  }, 20_000);

  it("reports a policy that throws as an evaluation error", async () => {
    const error = await sandbox
      .evaluate({ wasm: new Uint8Array([0, 1, 2]), meta: meta(), now: NOW, context: {} })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SandboxEvaluationError);
  });

  it("refuses calls beyond the pool and its queue", async () => {
    const small = createEvaluationSandbox({ maxWorkers: 1, maxQueued: 1, timeoutMs: 500 });
    try {
      const slow = (await compile(SLOW_REGO)).wasm;
      const job = { wasm: slow, meta: meta(), now: NOW, context: {} };
      const first = small.evaluate(job).catch((e: unknown) => e);
      const second = small.evaluate(job).catch((e: unknown) => e);
      const third = await small.evaluate(job).catch((e: unknown) => e);
      expect(third).toBeInstanceOf(FulcrumError);
      expect((third as FulcrumError).kind).toBe("RateLimited");
      expect(await first).toBeInstanceOf(SandboxLimitError);
      expect(await second).toBeInstanceOf(SandboxLimitError);
    } finally {
      await small.close();
    }
  }, 20_000);
});
