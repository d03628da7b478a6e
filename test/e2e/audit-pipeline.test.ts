import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { type Event, EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { EventStoreService } from "../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import { Decision } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { isPortFree, waitFor } from "../../scripts/services/process.js";
import { FulcrumClient } from "../../sdk/src/index.js";
import {
  clientOf,
  type E2eTenant,
  edge,
  edgeUrl,
  functionsUrl,
  newTenant,
  timeUntil,
} from "../harness/e2e-stack.js";
import { relaunchTestNats } from "../harness/nats-server.js";
import { toolRule } from "../harness/policy-fixtures.js";

/**
 * The audit pipeline end to end on the whole local stack (test/harness/global-setup.ts):
 * decisions at the edge → Durable Object buffer → NATS JetStream (WebSocket) → event
 * processor → ClickHouse → the management API's EventStoreService; SDK events through
 * the edge's PublishEvent; management changes from functions. Then NATS restarted
 * under load: nothing lost.
 */

const events = (key: string) => clientOf(EventStoreService, functionsUrl(), key);
const edgeEvents = (key: string) => clientOf(EventStoreService, edgeUrl(), key);

let a: E2eTenant;
let b: E2eTenant;
let checkKey: string;

beforeAll(async () => {
  a = await newTenant("audit-a");
  b = await newTenant("audit-b");
  await a.activate({ rules: [toolRule("shell_run")] });
  checkKey = (await a.newKey()).key;
});

/** Every event of `tenant` matching `filter`, all pages. */
async function allEvents(
  key: string,
  filter: { executionId?: string; workflowId?: string; eventTypes?: EventType[] } = {},
): Promise<Event[]> {
  const found: Event[] = [];
  let pageToken = "";
  do {
    const page = await events(key).queryEvents({ ...filter, limit: 1000, pageToken });
    found.push(...page.events);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return found;
}

/** Waits until `count(events)` reaches `n` (and returns them); fails on more. */
async function eventually(
  key: string,
  filter: Parameters<typeof allEvents>[1],
  n: number,
  withinMs = 20_000,
): Promise<Event[]> {
  let last: Event[] = [];
  try {
    await timeUntil(async () => {
      last = await allEvents(key, filter);
      return last.length >= n;
    }, withinMs);
  } catch (error) {
    throw new Error(`${last.length} of ${n} events after ${withinMs} ms: ${String(error)}`);
  }
  return last;
}

async function codeOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return "OK";
  } catch (error) {
    return Code[ConnectError.from(error).code];
  }
}

describe("decisions at the edge", () => {
  it("land once each in ClickHouse, typed by verdict, visible to their tenant only", async () => {
    const workflowId = `wf-decisions-${Date.now()}`;
    const decisionIds = new Map<string, Decision>();
    for (let i = 0; i < 20; i++) {
      const tool = i % 2 === 0 ? "shell_run" : "search";
      const res = await edge(checkKey).checkPolicy({ context: { workflowId, toolNames: [tool] } });
      decisionIds.set(res.decisionId, res.decision);
    }
    const started = performance.now();
    const stored = await eventually(a.adminKey, { workflowId }, 20);
    const lagMs = performance.now() - started;
    expect(stored).toHaveLength(20);
    expect(new Set(stored.map((e) => e.eventId)).size).toBe(20);
    for (const event of stored) {
      const id = event.policyResult?.decisionId ?? "";
      expect(decisionIds.get(id)).toBe(event.policyResult?.decision);
      expect(event.tenantId).toBe(a.tenantId);
      expect(event.sequence).toBeGreaterThan(0n);
    }
    const types = stored.map((e) => e.eventType);
    expect(types.filter((t) => t === EventType.POLICY_VIOLATION)).toHaveLength(10);
    expect(types.filter((t) => t === EventType.POLICY_EVALUATED)).toHaveLength(10);
    console.log(`20 decisions visible through QueryEvents ${lagMs.toFixed(0)} ms after the last`);

    expect(await allEvents(b.adminKey, { workflowId })).toHaveLength(0);
    expect(await codeOf(events(b.adminKey).queryEvents({ tenantId: a.tenantId }))).toBe(
      "PermissionDenied",
    );
  });
});

describe("SDK events through the edge", () => {
  it("an envelope's events come back in order, once each", async () => {
    const sdk = new FulcrumClient({ baseUrl: edgeUrl(), apiKey: checkKey, timeoutMs: 10_000 });
    const env = sdk.envelope({ workflowId: "wf-sdk" });
    await env.run(async (e) => {
      e.log("checkpoint_created", { step: 1 });
      e.log("tool_invoked", { tool: "search" });
    });
    await timeUntil(async () => env.pendingEvents === 0, 10_000);
    expect(env.failedEvents).toHaveLength(0);
    await eventually(a.adminKey, { executionId: env.executionId }, 4);
    const res = await events(a.adminKey).getExecutionEvents({ executionId: env.executionId });
    expect(res.events.map((e) => EventType[e.eventType])).toEqual([
      "EXECUTION_STARTED",
      "CHECKPOINT_CREATED",
      "TOOL_INVOKED",
      "EXECUTION_COMPLETED",
    ]);
  });

  it("a publish retried without an event id is stored once", async () => {
    const executionId = `exec-retry-${Date.now()}`;
    const request = {
      event: { executionId, workflowId: "wf-retry", eventType: EventType.LLM_CALL_COMPLETED },
    };
    const first = await edgeEvents(checkKey).publishEvent(request);
    const second = await edgeEvents(checkKey).publishEvent(request);
    expect(second.eventId).toBe(first.eventId);
    expect(first.duplicate).toBe(false);
    expect(second.duplicate).toBe(true);
    await eventually(a.adminKey, { executionId }, 1);
    // Give a second copy time to arrive, were there one.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(await allEvents(a.adminKey, { executionId })).toHaveLength(1);
  });
});

describe("management changes", () => {
  it("are audit events too, with the PostgreSQL row's id", async () => {
    const t = await newTenant("audit-mgmt");
    const { policyId } = await t.activate({ rules: [toolRule("rm_rf")] });
    const change = (e: Event) => (e.details.case === "management" ? e.details.value : undefined);
    let stored: Event[] = [];
    await timeUntil(async () => {
      stored = await allEvents(t.adminKey, { eventTypes: [EventType.MANAGEMENT_CHANGE] });
      return stored.some((e) => change(e)?.action === "policy.created");
    }, 20_000);
    const created = stored.find((e) => change(e)?.action === "policy.created");
    expect(change(created as Event)?.targetId).toBe(policyId);
    const actions = stored.map((e) => change(e)?.action);
    expect(actions).toEqual(expect.arrayContaining(["tenant.created", "api_key.created"]));
    expect(new Set(stored.map((e) => e.eventId)).size).toBe(stored.length);
  });
});

describe("StreamEvents", () => {
  it("follows the caller's tenant live", async () => {
    const abort = new AbortController();
    const received: Event[] = [];
    const workflowId = `wf-stream-${Date.now()}`;
    const reading = (async () => {
      try {
        for await (const msg of events(a.adminKey).streamEvents(
          { workflowId },
          { signal: abort.signal, timeoutMs: 30_000 },
        )) {
          if (msg.event) received.push(msg.event);
          if (received.length >= 1) break;
        }
      } catch (error) {
        if (!abort.signal.aborted) throw error;
      }
    })();
    // The stream subscribes asynchronously; decide until one arrives.
    await timeUntil(async () => {
      await edge(checkKey).checkPolicy({ context: { workflowId, toolNames: ["shell_run"] } });
      return received.length > 0;
    }, 15_000);
    abort.abort();
    await reading;
    expect(received[0]?.tenantId).toBe(a.tenantId);
    expect(received[0]?.eventType).toBe(EventType.POLICY_VIOLATION);
  });
});

describe("NATS restarted", () => {
  const nats = () => inject("e2eNats");

  async function stopNats() {
    const pid = Number(readFileSync(join(nats().dir, "nats.pid"), "utf8").trim());
    process.kill(pid, "SIGTERM");
    await waitFor(() => isPortFree(nats().port), 10_000);
  }

  afterAll(async () => {
    // Whatever happened, leave the stack's NATS running for the files after this one.
    if (await isPortFree(nats().port)) await relaunchTestNats(nats());
  });

  it("decisions keep flowing, and every event made during the outage lands once", async () => {
    const workflowId = `wf-outage-${Date.now()}`;
    await stopNats();
    const decided: string[] = [];
    for (let i = 0; i < 30; i++) {
      const res = await edge(checkKey).checkPolicy({
        context: { workflowId, toolNames: ["shell_run"] },
      });
      expect(res.decision).toBe(Decision.DENY);
      decided.push(res.decisionId);
    }
    // The edge's PublishEvent keeps the event in its buffer while NATS is away.
    const buffered = await edgeEvents(checkKey).publishEvent({
      event: {
        executionId: `exec-outage-${Date.now()}`,
        workflowId,
        eventType: EventType.CUSTOM,
        customType: "outage_probe",
      },
    });
    expect(buffered.eventId).toMatch(/^[0-9a-f-]{36}$/);

    await relaunchTestNats(nats());
    const stored = await eventually(a.adminKey, { workflowId }, 31, 60_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const final = await allEvents(a.adminKey, { workflowId });
    expect(final).toHaveLength(31);
    expect(new Set(final.map((e) => e.eventId)).size).toBe(31);
    expect(new Set(stored.map((e) => e.policyResult?.decisionId).filter(Boolean))).toEqual(
      new Set(decided),
    );
  });
});
