import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import {
  EventStoreService,
  type PublishEventRequest,
} from "../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { Decision, Phase } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import {
  type EvaluatePolicyRequest,
  PolicyService,
} from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { TEST_API_KEY } from "../../test/harness/sdk-client-stubs.js";
import { type FailedEvent, FulcrumClient, type FulcrumClientOptions } from "./index.js";

const UUIDV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/** A fake edge: records evaluations and publishes; `publish` decides each publish's fate. */
function fakeEdge(publish: (req: PublishEventRequest, attempt: number) => void = () => {}) {
  const evaluations: EvaluatePolicyRequest[] = [];
  const published: PublishEventRequest[] = [];
  /** The x-api-key of every call, in order. */
  const keys: (string | null)[] = [];
  const transport = createRouterTransport(({ service }) => {
    service(PolicyService, {
      evaluatePolicy(req, ctx) {
        keys.push(ctx.requestHeader.get("x-api-key"));
        evaluations.push(req);
        const denied = req.context?.toolNames.some((t) => t.startsWith("shell_"));
        return {
          decisionId: "dec_x",
          result: { decision: denied ? Decision.DENY : Decision.ALLOW },
        };
      },
    });
    service(EventStoreService, {
      publishEvent(req, ctx) {
        keys.push(ctx.requestHeader.get("x-api-key"));
        published.push(req);
        const attempt = published.filter((p) => p.event?.eventId === req.event?.eventId).length;
        publish(req, attempt);
        return { eventId: req.event?.eventId ?? "", streamSequence: BigInt(published.length) };
      },
    });
  });
  const client = (options: Partial<FulcrumClientOptions> = {}) =>
    new FulcrumClient({ baseUrl: "x", apiKey: TEST_API_KEY, transport, ...options });
  return { evaluations, published, keys, client };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("Envelope", () => {
  it("emits EXECUTION_STARTED with a client event id, the execution and its labels", async () => {
    const edge = fakeEdge();
    const env = edge.client().envelope({
      workflowId: "support-bot",
      executionId: "exec-1",
      metadata: { team: "cx" },
    });
    expect(env.pendingEvents).toBe(1);
    await env.flush();
    expect(env.pendingEvents).toBe(0);
    const event = edge.published[0]?.event;
    expect(event).toMatchObject({
      // The tenant is the API key's: events never name it.
      tenantId: "",
      executionId: "exec-1",
      workflowId: "support-bot",
      eventType: EventType.EXECUTION_STARTED,
      labels: { team: "cx" },
      payload: { workflow_id: "support-bot", metadata: { team: "cx" } },
    });
    expect(event?.eventId).toMatch(UUIDV7);
    expect(event?.source).toMatch(/^fulcrum-sdk\/\d+\.\d+\.\d+ \(typescript\)$/);
    expect(event?.timestamp).toBeDefined();
  });

  it("generates a UUIDv7 execution id when none is given", () => {
    const env = fakeEdge().client().envelope({ workflowId: "w" });
    expect(env.executionId).toMatch(UUIDV7);
    expect(() => fakeEdge().client().envelope({ workflowId: "" })).toThrow(/workflowId/);
  });

  it("guard() sends the action and step in the envelope's context and returns the decision", async () => {
    const edge = fakeEdge();
    const env = edge.client().envelope({ workflowId: "wf", userId: "u1", userRoles: ["agent"] });
    const decision = await env.guard("run_command", {
      inputText: "list files",
      model: "gpt-4o",
      tools: ["shell_run"],
      estimatedCost: 0.01,
      estimatedTokens: 812,
      attributes: { region: "eu" },
      phase: "PRE_TOOL_CALL",
    });
    expect(decision).toMatchObject({ decision: "DENY", allowed: false, decisionId: "dec_x" });
    expect(edge.evaluations[0]?.policyId).toBe("");
    expect(edge.evaluations[0]?.context).toMatchObject({
      tenantId: "",
      workflowId: "wf",
      userId: "u1",
      userRoles: ["agent"],
      action: "run_command",
      inputText: "list files",
      modelId: "gpt-4o",
      toolNames: ["shell_run"],
      estimatedCostUsd: 0.01,
      estimatedTokens: 812,
      attributes: { region: "eu" },
      phase: Phase.PRE_TOOL_CALL,
    });
    expect(await env.allowed("summarize", { inputText: "hello" })).toBe(true);
    await env.flush();
    // Decisions and event publishes alike carry the key.
    expect(edge.keys.length).toBeGreaterThanOrEqual(3);
    expect(new Set(edge.keys)).toEqual(new Set([TEST_API_KEY]));
  });

  it("maps event type names, and sends other names as CUSTOM", async () => {
    const edge = fakeEdge();
    const env = edge.client().envelope({ workflowId: "wf" });
    env.log("llm_call_completed", { tokens: 12, big: 2n });
    env.log("TOOL_INVOKED", { tool: "search" }, { labels: { step: "2" } });
    env.log("EVENT_TYPE_POLICY_VIOLATION");
    env.log("cache_hit", { key: "k" });
    await env.flush();
    const events = edge.published.slice(1).map((p) => p.event);
    expect(events.map((e) => [e?.eventType, e?.customType])).toEqual([
      [EventType.LLM_CALL_COMPLETED, ""],
      [EventType.TOOL_INVOKED, ""],
      [EventType.POLICY_VIOLATION, ""],
      [EventType.CUSTOM, "cache_hit"],
    ]);
    expect(events[0]?.payload).toEqual({ tokens: 12, big: "2" });
    expect(events[1]?.labels).toEqual({ step: "2" });
  });

  it("publishes in the order logged", async () => {
    const edge = fakeEdge();
    const env = edge.client().envelope({ workflowId: "wf" });
    const ids = [env.log("a"), env.log("b"), env.log("c")];
    await env.complete();
    expect(
      edge.published.map((p) => p.event?.customType || EventType[p.event?.eventType ?? 0]),
    ).toEqual(["EXECUTION_STARTED", "a", "b", "c", "EXECUTION_COMPLETED"]);
    expect(edge.published.slice(1, 4).map((p) => p.event?.eventId)).toEqual(ids);
  });

  it("retries a failing publish 5 times with doubling backoff and the same event id", async () => {
    vi.useFakeTimers();
    const failures: FailedEvent[] = [];
    const edge = fakeEdge(() => {
      throw new ConnectError("event store down", Code.Unavailable);
    });
    const env = edge.client({ onEventError: (f) => failures.push(f) }).envelope({
      workflowId: "wf",
    });
    await vi.advanceTimersByTimeAsync(0);
    const times = [Date.now()];
    const attempts = () => edge.published.length;
    expect(attempts()).toBe(1);
    for (const wait of [200, 400, 800, 1600, 3200]) {
      await vi.advanceTimersByTimeAsync(wait - 1);
      expect(attempts()).toBe(times.length);
      await vi.advanceTimersByTimeAsync(1);
      times.push(Date.now());
      expect(attempts()).toBe(times.length);
    }
    await vi.advanceTimersByTimeAsync(60_000);
    expect(attempts()).toBe(6);
    expect(new Set(edge.published.map((p) => p.event?.eventId)).size).toBe(1);
    // The time too is the event's, minted once: ClickHouse collapses duplicates on
    // (tenant, event_time, event_id), so a retry must repeat both.
    expect(
      new Set(
        edge.published.map((p) => `${p.event?.timestamp?.seconds}.${p.event?.timestamp?.nanos}`),
      ).size,
    ).toBe(1);
    expect(env.pendingEvents).toBe(0);
    expect(env.failedEvents).toHaveLength(1);
    expect(failures).toEqual(env.failedEvents);
    expect(failures[0]).toMatchObject({
      type: "EXECUTION_STARTED",
      attempts: 6,
      executionId: env.executionId,
      error: { code: "Unavailable", message: "event store down" },
    });
  });

  it("stops retrying once a publish succeeds", async () => {
    vi.useFakeTimers();
    const edge = fakeEdge((_req, attempt) => {
      if (attempt < 3) throw new ConnectError("flaky", Code.DeadlineExceeded);
    });
    const env = edge.client().envelope({ workflowId: "wf" });
    await vi.advanceTimersByTimeAsync(200 + 400);
    await env.flush();
    expect(edge.published).toHaveLength(3);
    expect(env.failedEvents).toEqual([]);
  });

  it("does not retry a refused publish (Unimplemented today) and never fails the caller", async () => {
    const onEventError = vi.fn();
    const edge = fakeEdge(() => {
      throw new ConnectError("not implemented", Code.Unimplemented);
    });
    const env = edge.client({ onEventError }).envelope({ workflowId: "wf" });
    expect(typeof env.log("step", { n: 1 })).toBe("string");
    await expect(env.complete()).resolves.toBeUndefined();
    expect(edge.published).toHaveLength(3);
    expect(env.failedEvents.map((f) => [f.type, f.attempts, f.error.code])).toEqual([
      ["EXECUTION_STARTED", 1, "Unimplemented"],
      ["step", 1, "Unimplemented"],
      ["EXECUTION_COMPLETED", 1, "Unimplemented"],
    ]);
    expect(onEventError).toHaveBeenCalledTimes(3);
  });

  it("keeps publishing when the onEventError callback throws", async () => {
    const edge = fakeEdge(() => {
      throw new ConnectError("bad", Code.InvalidArgument);
    });
    const env = edge
      .client({
        onEventError: () => {
          throw new Error("callback bug");
        },
      })
      .envelope({ workflowId: "wf" });
    env.log("x");
    await env.flush();
    expect(env.failedEvents).toHaveLength(2);
  });

  it("run() completes the envelope with the function's result", async () => {
    const edge = fakeEdge();
    const env = edge.client().envelope({ workflowId: "wf" });
    await expect(env.run(async (e) => (await e.allowed("read")) && "done")).resolves.toBe("done");
    expect(env.status).toBe("COMPLETED");
    expect(edge.published.at(-1)?.event?.eventType).toBe(EventType.EXECUTION_COMPLETED);
    await env.complete();
    await env.fail(new Error("late"));
    expect(edge.published).toHaveLength(2);
  });

  it("run() fails the envelope and rethrows when the function throws", async () => {
    const edge = fakeEdge();
    const env = edge.client().envelope({ workflowId: "wf" });
    const boom = new TypeError("boom");
    await expect(
      env.run(() => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(env.status).toBe("FAILED");
    expect(edge.published.at(-1)?.event).toMatchObject({
      eventType: EventType.EXECUTION_FAILED,
      payload: { error: "boom", error_name: "TypeError" },
    });
  });
});

describe("sdk/README.md", () => {
  it.each([
    "guard.ts",
    "failure-modes.ts",
    "rate-limits.ts",
    "settle.ts",
    "envelope.ts",
    "approval.ts",
  ])("shows examples/%s verbatim (the e2e tier runs the examples, so the README runs)", (name) => {
    const sdk = join(import.meta.dirname, "..");
    const readme = readFileSync(join(sdk, "README.md"), "utf8");
    const example = readFileSync(join(sdk, "examples", name), "utf8");
    const published = example.replace('from "../src/index.js"', 'from "@fulcrum/sdk"');
    expect(readme).toContain(`\`\`\`ts\n${published}\`\`\``);
  });
});
