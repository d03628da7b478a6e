import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PATHOLOGICAL_REGO, SLOW_REGO } from "../../functions/src/sandbox/test-policies.js";
import { Decision } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { DENY_DELETE_REGO, failure, must, uniqueName } from "../harness/policy-fixtures.js";

// DryRunPolicy evaluates tenant wasm, which can be written to run for minutes: it runs in
// a worker thread with a 2 s deadline and capped memory (functions/src/sandbox/), so the
// process keeps answering everyone else meanwhile.
let stack: FunctionsStack;

beforeAll(async () => {
  stack = await startFunctionsStack();
}, 120_000);

afterAll(async () => {
  await stack?.stop();
});

/** Calls `probe` back to back until `work` settles; the slowest probe's latency, in ms. */
async function slowestWhile(work: Promise<unknown>, probe: () => Promise<void>): Promise<number> {
  let settled = false;
  void work.finally(() => {
    settled = true;
  });
  let slowest = 0;
  let probes = 0;
  while (!settled) {
    const started = performance.now();
    await probe();
    slowest = Math.max(slowest, performance.now() - started);
    probes += 1;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  expect(probes).toBeGreaterThan(3);
  return slowest;
}

describe("DryRunPolicy limits", () => {
  it("refuses an inline policy that would run for minutes, within ~3 s, while the process keeps answering", async () => {
    const t = await stack.createTenant();
    const policies = stack.client(PolicyService, t.adminKey);
    // Warm up: the worker pool and the connections.
    await policies.dryRunPolicy({
      policy: { name: "warm", regoSource: DENY_DELETE_REGO },
      context: { toolNames: ["x"] },
    });

    for (const regoSource of [PATHOLOGICAL_REGO, SLOW_REGO]) {
      const started = performance.now();
      const dryRun = failure(
        policies.dryRunPolicy({
          policy: { name: uniqueName("huge"), regoSource },
          context: { toolNames: ["x"] },
        }),
      );
      const slowestReady = await slowestWhile(dryRun, async () => {
        const res = await fetch(`${stack.url}/readyz`);
        expect(res.status).toBe(200);
        await res.arrayBuffer();
        await policies.listPolicies({});
      });
      const error = await dryRun;
      const elapsed = performance.now() - started;
      expect(error.code).toBe(Code.InvalidArgument);
      expect(error.rawMessage).toMatch(
        /^the policy (did not finish evaluating within 2 s|needed more than 128 MiB of memory to evaluate): simplify it/,
      );
      expect(elapsed).toBeLessThan(3_500);
      expect(slowestReady).toBeLessThan(500);
    }

    // The sandbox recovers: the next dry run is answered as usual.
    const after = await policies.dryRunPolicy({
      policy: { name: "after", regoSource: DENY_DELETE_REGO },
      context: { toolNames: ["delete_db"] },
    });
    expect(after.result?.decision).toBe(Decision.DENY);
  });

  it("refuses a stored version that runs over, naming the version", async () => {
    const t = await stack.createTenant();
    const policies = stack.client(PolicyService, t.adminKey);
    const created = await policies.createPolicy({
      policy: { name: uniqueName("slow"), regoSource: SLOW_REGO },
    });
    const id = must(created.policy).policyId;
    const error = await failure(policies.dryRunPolicy({ policyId: id, context: {} }));
    expect(error.code).toBe(Code.InvalidArgument);
    expect(error.rawMessage).toMatch(
      /^version 1 of the policy did not finish evaluating within 2 s/,
    );
  });

  it("costs a few ms per evaluation once warm", async () => {
    const t = await stack.createTenant();
    const policies = stack.client(PolicyService, t.adminKey);
    const created = await policies.createPolicy({
      policy: { name: uniqueName("fast"), regoSource: DENY_DELETE_REGO },
    });
    const id = must(created.policy).policyId;
    const call = () =>
      policies.dryRunPolicy({ policyId: id, context: { toolNames: ["delete_x"] } });
    await call();
    const runs = 20;
    const started = performance.now();
    for (let i = 0; i < runs; i++) expect((await call()).result?.decision).toBe(Decision.DENY);
    const perCall = (performance.now() - started) / runs;
    console.info(`DryRunPolicy (stored version, warm sandbox): ${perCall.toFixed(1)} ms per call`);
    expect(perCall).toBeLessThan(200);
  });
});
