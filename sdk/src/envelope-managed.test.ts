import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EnvelopeStatus } from "../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";
import { EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { TEST_API_KEY } from "../../test/harness/sdk-client-stubs.js";
import { fakeFulcrum } from "../../test/harness/sdk-management-stubs.js";
import { FulcrumClient } from "./index.js";

// Envelopes with managementUrl: created through EnvelopeService, moved to RUNNING, then
// COMPLETED / FAILED / TERMINATED; guard() carries the envelope id; children name their
// parent. Unmanaged envelopes (no managementUrl) are envelope.test.ts.

afterEach(() => {
  vi.useRealTimers();
});

describe("managed Envelope", () => {
  it("start() creates the envelope with its governance and moves it to RUNNING", async () => {
    const fake = fakeFulcrum();
    const env = fake.client().envelope({
      workflowId: "research",
      executionId: "exec-1",
      budgetId: "bud_1",
      metadata: { team: "cx" },
      governance: {
        tokenBudget: 50_000,
        costLimitUsd: 2,
        timeoutMs: 90_500,
        allowedModels: ["gpt-4o-mini"],
        allowedTools: ["search_*"],
        maxLlmCalls: 20,
        maxToolCalls: 40,
      },
    });
    expect(env.managed).toBe(true);
    expect(env.status).toBe("PENDING");
    expect(env.envelopeId).toBe("");
    await expect(env.start()).resolves.toBe(env);
    expect(env.status).toBe("RUNNING");
    expect(env.envelopeId).toBe("env_1");
    expect(fake.calls).toEqual(["CreateEnvelope", "UpdateEnvelopeStatus:RUNNING"]);
    expect(fake.creates[0]).toMatchObject({
      workflowId: "research",
      executionId: "exec-1",
      budgetId: "bud_1",
      parentEnvelopeId: "",
      metadata: { team: "cx" },
      governance: {
        tokenBudget: 50_000n,
        costLimitUsd: 2,
        timeout: { seconds: 90n, nanos: 500_000_000 },
        allowedModels: ["gpt-4o-mini"],
        allowedTools: ["search_*"],
        maxLlmCalls: 20,
        maxToolCalls: 40,
      },
    });
    await env.start();
    expect(fake.calls).toHaveLength(2);
  });

  it("run(): guard() carries the envelope id, events too; complete → COMPLETED; no SDK lifecycle events", async () => {
    const fake = fakeFulcrum();
    const env = fake.client().envelope({ workflowId: "wf" });
    const result = await env.run(async (e) => {
      await e.guard("summarize", { model: "gpt-4o-mini" });
      e.log("llm_call_completed", { tokens: 3 });
      return "done";
    });
    expect(result).toBe("done");
    expect(env.status).toBe("COMPLETED");
    expect(fake.calls).toEqual([
      "CreateEnvelope",
      "UpdateEnvelopeStatus:RUNNING",
      "EvaluatePolicy",
      "UpdateEnvelopeStatus:COMPLETED",
    ]);
    expect(fake.evaluations[0]?.context).toMatchObject({ envelopeId: "env_1", workflowId: "wf" });
    // The server emits EXECUTION_STARTED / COMPLETED on the transitions: the SDK does not
    // publish its own, so an execution is not counted twice.
    expect(fake.published.map((p) => [p.event?.eventType, p.event?.envelopeId])).toEqual([
      [EventType.LLM_CALL_COMPLETED, "env_1"],
    ]);
  });

  it("a guard before start() starts the envelope first; a log() waits for the id", async () => {
    const fake = fakeFulcrum();
    const env = fake.client().envelope({ workflowId: "wf" });
    env.log("step", { n: 1 });
    await env.guard("read");
    await env.flush();
    expect(fake.calls.filter((c) => c === "CreateEnvelope")).toHaveLength(1);
    expect(fake.published[0]?.event).toMatchObject({ customType: "step", envelopeId: "env_1" });
    await env.complete({ answer: 42 });
    expect(fake.published.at(-1)?.event).toMatchObject({
      customType: "execution_result",
      payload: { answer: 42 },
    });
  });

  it("run() that throws → FAILED with the error as reason, and rethrows", async () => {
    const fake = fakeFulcrum();
    const env = fake.client().envelope({ workflowId: "wf" });
    const boom = new TypeError("boom");
    await expect(
      env.run(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(env.status).toBe("FAILED");
    expect(fake.transitions.at(-1)).toMatchObject({
      status: EnvelopeStatus.FAILED,
      reason: "TypeError: boom",
    });
  });

  it("run() aborted through its signal → TERMINATED", async () => {
    const fake = fakeFulcrum();
    const env = fake.client().envelope({ workflowId: "wf" });
    const controller = new AbortController();
    await expect(
      env.run(
        async () => {
          controller.abort(new Error("user pressed stop"));
          throw new Error("interrupted");
        },
        { signal: controller.signal },
      ),
    ).rejects.toThrow("interrupted");
    expect(env.status).toBe("TERMINATED");
    expect(fake.transitions.at(-1)).toMatchObject({
      status: EnvelopeStatus.TERMINATED,
      reason: "aborted: user pressed stop",
    });
  });

  it("child() names its parent (started first) and inherits workflow and user", async () => {
    const fake = fakeFulcrum();
    const parent = fake.client().envelope({ workflowId: "planner", userId: "u1" });
    const child = parent.child({ governance: { tokenBudget: 1000 } });
    await child.run(async (c) => {
      await c.guard("search", { tools: ["search_web"] });
    });
    expect(fake.creates.map((c) => [c.workflowId, c.parentEnvelopeId])).toEqual([
      ["planner", ""],
      ["planner", "env_1"],
    ]);
    expect(fake.evaluations[0]?.context).toMatchObject({ envelopeId: "env_2", userId: "u1" });
    expect(child.status).toBe("COMPLETED");
    expect(parent.status).toBe("RUNNING");
    await parent.complete();
    expect(parent.status).toBe("COMPLETED");
  });

  it("a refused start (suspended budget) rejects run() before the block runs", async () => {
    const fake = fakeFulcrum({
      create: () => {
        throw new ConnectError("budget bud_1 is SUSPENDED", Code.FailedPrecondition);
      },
    });
    const env = fake.client().envelope({ workflowId: "wf", budgetId: "bud_1" });
    const block = vi.fn();
    await expect(env.run(block)).rejects.toMatchObject({ code: "FailedPrecondition" });
    expect(block).not.toHaveBeenCalled();
    await expect(env.guard("x")).rejects.toThrow(/SUSPENDED/);
    expect(fake.evaluations).toHaveLength(0);
  });

  it("retries a transition whose answer was lost, and reads it back", async () => {
    vi.useFakeTimers();
    let completedOnce = false;
    const fake = fakeFulcrum({
      afterTransition: (req) => {
        if (req.status === EnvelopeStatus.COMPLETED && !completedOnce) {
          completedOnce = true;
          throw new ConnectError("answer lost", Code.Unavailable);
        }
      },
    });
    const env = await fake.client().startEnvelope({ workflowId: "wf" });
    const completing = env.complete();
    await vi.advanceTimersByTimeAsync(200);
    await completing;
    expect(env.status).toBe("COMPLETED");
    expect(fake.calls.slice(2)).toEqual([
      "UpdateEnvelopeStatus:COMPLETED",
      "UpdateEnvelopeStatus:COMPLETED",
      "GetEnvelope",
    ]);
  });

  it("an envelope the server already ended keeps that status on complete()", async () => {
    const fake = fakeFulcrum();
    const env = await fake.client().startEnvelope({ workflowId: "wf" });
    const stored = fake.envelopes.get(env.envelopeId);
    if (stored) stored.status = EnvelopeStatus.BUDGET_EXCEEDED;
    await expect(env.complete()).resolves.toBeUndefined();
    expect(env.status).toBe("BUDGET_EXCEEDED");
  });

  it("envelopeId given: attaches, no lifecycle calls; managed:false keeps 0.3 behaviour", async () => {
    const fake = fakeFulcrum();
    const attached = fake.client().envelope({ workflowId: "wf", envelopeId: "env_x" });
    expect(attached.managed).toBe(false);
    await attached.run(async (e) => e.guard("a"));
    const eventsOnly = fake.client().envelope({ workflowId: "wf", managed: false });
    await eventsOnly.complete();
    expect(fake.calls).toEqual(["EvaluatePolicy"]);
    expect(fake.evaluations[0]?.context?.envelopeId).toBe("env_x");
    expect(fake.published.map((p) => EventType[p.event?.eventType ?? 0])).toEqual([
      "EXECUTION_STARTED",
      "EXECUTION_COMPLETED",
      "EXECUTION_STARTED",
      "EXECUTION_COMPLETED",
    ]);
  });

  it("managed: true without managementUrl throws at once", () => {
    const client = new FulcrumClient({ baseUrl: "x", apiKey: TEST_API_KEY });
    expect(() => client.envelope({ workflowId: "wf", managed: true })).toThrow(
      /a managed envelope needs the management API: pass managementUrl/,
    );
    expect(client.envelope({ workflowId: "wf" }).managed).toBe(false);
  });
});
