import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  allowedNext,
  type EnvelopeStatusName,
} from "../../functions/src/envelopes/envelope-transitions.js";
import { EnvelopeStatus, Framework } from "../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";
import { EnvelopeService } from "../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import { EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import { type EnvelopeKit, seconds, startEnvelopeKit } from "../harness/envelope-helpers.js";
import { tenantEvents } from "../harness/jetstream-events.js";
import { expectCode, userWithKey } from "../harness/management-helpers.js";

// EnvelopeService over the real kit.stack (PostgreSQL, Redis through the Upstash stand-in,
// a NATS of the test's own): creation and its checks, the lifecycle with every invalid
// transition, one event and a fresh EnvelopeRecord in Redis per transition.
// Parent / child envelopes and reconciliation: envelope-hierarchy.test.ts.
let kit: EnvelopeKit;

beforeAll(async () => {
  kit = await startEnvelopeKit();
}, 120_000);
afterAll(async () => {
  await kit?.stop();
});

const S = EnvelopeStatus;
const open: EnvelopeKit["open"] = (init) => kit.open(init);
const move: EnvelopeKit["move"] = (id, status, reason) => kit.move(id, status, reason);
const record: EnvelopeKit["record"] = (id, tenantId) => kit.record(id, tenantId);
const eventsOf: EnvelopeKit["eventsOf"] = (id, count, ms) => kit.eventsOf(id, count, ms);

async function budget(status = "OK"): Promise<string> {
  const { rows } = await kit.stack.owner.query<{ id: string }>(
    `INSERT INTO budgets (tenant_id, name, period, max_tokens, status)
     VALUES ($1, $2, 'MONTHLY', 100000, $3) RETURNING id::text AS id`,
    [kit.tenant.tenantId, `b-${Math.random().toString(36).slice(2)}`, status],
  );
  return rows[0]?.id as string;
}

describe("CreateEnvelope", () => {
  it("opens an envelope AUTHORIZED, emits created and authorized, and publishes its record", async () => {
    const budgetId = await budget();
    const env = await open({
      budgetId,
      framework: Framework.LANGGRAPH,
      metadata: { team: "a" },
      governance: {
        tokenBudget: 5000n,
        costLimitUsd: 1.5,
        maxLlmCalls: 10,
        maxToolCalls: 4,
        timeout: seconds(600),
        allowedModels: ["gpt-4o"],
        allowedTools: ["search_*"],
      },
    });
    expect(env).toMatchObject({
      tenantId: kit.tenant.tenantId,
      workflowId: "wf-env",
      status: S.AUTHORIZED,
      framework: Framework.LANGGRAPH,
      parentEnvelopeId: "",
      metadata: { team: "a" },
    });
    expect(env.executionId).toBe(env.envelopeId);
    expect(env.governance).toMatchObject({ budgetId, tokenBudget: 5000n, costLimitUsd: 1.5 });
    expect(env.costSummary).toMatchObject({ envelopeId: env.envelopeId, totalTokens: 0n });
    expect(await record(env.envelopeId)).toEqual({
      id: env.envelopeId,
      status: "AUTHORIZED",
      workflowId: "wf-env",
      ancestors: [],
      budgetId,
      limits: { tokens: 5000, costMicros: 1_500_000, llmCalls: 10, toolCalls: 4 },
      allowedModels: ["gpt-4o"],
      allowedTools: ["search_*"],
      updatedAtMs: expect.any(Number),
    });
    const events = await eventsOf(env.envelopeId, 2);
    expect(events.map((e) => [e.eventType, e.customType, e.payload?.from, e.payload?.to])).toEqual([
      [EventType.CUSTOM, "envelope.created", null, "PENDING"],
      [EventType.CUSTOM, "envelope.authorized", "PENDING", "AUTHORIZED"],
    ]);
    expect(events[0]?.executionId).toBe(env.executionId);
    expect(events[0]?.workflowId).toBe("wf-env");
  });

  it("is idempotent on execution_id, and refuses the same id under another workflow", async () => {
    const first = await open({ executionId: "exec-idem-1" });
    const again = await open({ executionId: "exec-idem-1" });
    expect(again.envelopeId).toBe(first.envelopeId);
    await expectCode(
      kit.api.createEnvelope({ workflowId: "wf-other", executionId: "exec-idem-1" }),
      Code.AlreadyExists,
      /already names envelope/,
    );
  });

  it("refuses bad governance, unknown and suspended budgets", async () => {
    await expectCode(
      kit.api.createEnvelope({ workflowId: "wf", governance: { timeout: seconds(8 * 86400) } }),
      Code.InvalidArgument,
      /governance.timeout.*7 days/,
    );
    await expectCode(
      kit.api.createEnvelope({ workflowId: "wf", governance: { tokenBudget: -1n } }),
      Code.InvalidArgument,
    );
    await expectCode(
      kit.api.createEnvelope({ workflowId: "wf", governance: { costLimitUsd: -0.5 } }),
      Code.InvalidArgument,
    );
    const unknown = "0193a1b2-0000-7000-8000-000000000000";
    await expectCode(
      kit.api.createEnvelope({ workflowId: "wf", budgetId: unknown }),
      Code.InvalidArgument,
      /does not exist in this tenant/,
    );
    await expectCode(
      kit.api.createEnvelope({ workflowId: "wf", budgetId: "not-a-uuid" }),
      Code.InvalidArgument,
    );
    const a = await budget();
    const b = await budget();
    await expectCode(
      kit.api.createEnvelope({ workflowId: "wf", budgetId: a, governance: { budgetId: b } }),
      Code.InvalidArgument,
      /differs from governance.budget_id/,
    );
    await expectCode(
      kit.api.createEnvelope({ workflowId: "wf", budgetId: await budget("SUSPENDED") }),
      Code.FailedPrecondition,
      /SUSPENDED/,
    );
    // Another tenant's budget does not exist for this one.
    await expectCode(
      kit.stack
        .client(EnvelopeService, kit.other.adminKey)
        .createEnvelope({ workflowId: "wf", budgetId: a }),
      Code.InvalidArgument,
    );
  });

  it("lets every role open envelopes", async () => {
    const viewer = await userWithKey(kit.stack, kit.tenant.adminKey, UserRole.VIEWER);
    const res = await kit.stack
      .client(EnvelopeService, viewer.key)
      .createEnvelope({ workflowId: "wf" });
    expect(res.envelope?.status).toBe(S.AUTHORIZED);
  });
});

describe("GetEnvelope", () => {
  it("answers the envelope with its cost summary, NotFound for unknown ids and other tenants", async () => {
    const env = await open();
    await kit.stack.owner.query(`UPDATE envelopes SET cost_summary = $2 WHERE id = $1`, [
      env.envelopeId,
      JSON.stringify({ input_tokens: 120, output_tokens: 30, cost_usd: 0.25, llm_calls: 2 }),
    ]);
    const got = await kit.api.getEnvelope({ envelopeId: env.envelopeId });
    expect(got.envelope?.costSummary).toMatchObject({
      inputTokens: 120n,
      outputTokens: 30n,
      totalTokens: 150n,
      costUsd: 0.25,
      llmCalls: 2n,
      toolCalls: 0n,
    });
    await expectCode(
      kit.api.getEnvelope({ envelopeId: "0193a1b2-0000-7000-8000-000000000000" }),
      Code.NotFound,
    );
    await expectCode(kit.api.getEnvelope({ envelopeId: "nope" }), Code.NotFound);
    await expectCode(
      kit.stack
        .client(EnvelopeService, kit.other.adminKey)
        .getEnvelope({ envelopeId: env.envelopeId }),
      Code.NotFound,
    );
  });
});

describe("UpdateEnvelopeStatus", () => {
  it("runs the lifecycle with one event and a fresh record per transition", async () => {
    const env = await open({ governance: { timeout: seconds(3600) } });
    const id = env.envelopeId;

    const running = await move(id, S.RUNNING, "go");
    expect(running.startedAt).toBeDefined();
    const started = timestampMs(running.startedAt as NonNullable<typeof running.startedAt>);
    let rec = await record(id);
    expect(rec?.status).toBe("RUNNING");
    expect(rec?.deadlineMs).toBe(started + 3600_000);

    const paused = await move(id, S.PAUSED, "waiting for approval");
    expect(paused.statusReason).toBe("waiting for approval");
    expect((await record(id))?.status).toBe("PAUSED");

    const resumed = await move(id, S.RUNNING);
    expect(timestampMs(resumed.startedAt as NonNullable<typeof resumed.startedAt>)).toBe(started);
    expect((await record(id))?.deadlineMs).toBe(started + 3600_000);

    const done = await move(id, S.COMPLETED, "ok");
    expect(done.completedAt).toBeDefined();
    rec = await record(id);
    expect(rec?.status).toBe("COMPLETED");
    const ttl = await kit.stack.redis.pttl(
      kit.stack.deps.budgetKeys.envelope(kit.tenant.tenantId, id),
    );
    expect(ttl).toBeGreaterThan(6 * 86400_000);
    expect(ttl).toBeLessThanOrEqual(7 * 86400_000);

    const events = await eventsOf(id, 6);
    expect(events.map((e) => [EventType[e.eventType], e.payload?.from, e.payload?.to])).toEqual([
      ["CUSTOM", null, "PENDING"],
      ["CUSTOM", "PENDING", "AUTHORIZED"],
      ["EXECUTION_STARTED", "AUTHORIZED", "RUNNING"],
      ["EXECUTION_PAUSED", "RUNNING", "PAUSED"],
      ["EXECUTION_RESUMED", "PAUSED", "RUNNING"],
      ["EXECUTION_COMPLETED", "RUNNING", "COMPLETED"],
    ]);
    expect(events[3]?.payload?.reason).toBe("waiting for approval");
  });

  it("maps the other endings to their events", async () => {
    const endings: [EnvelopeStatus, string][] = [
      [S.FAILED, "EXECUTION_FAILED"],
      [S.TIMEOUT, "EXECUTION_FAILED"],
      [S.TERMINATED, "EXECUTION_TERMINATED"],
      [S.BUDGET_EXCEEDED, "EXECUTION_TERMINATED"],
      [S.POLICY_VIOLATION, "EXECUTION_TERMINATED"],
    ];
    for (const [status, type] of endings) {
      const { envelopeId } = await open();
      await move(envelopeId, S.RUNNING);
      await move(envelopeId, status, "why");
      const events = await eventsOf(envelopeId, 4);
      expect(events.map((e) => EventType[e.eventType]).at(-1), S[status]).toBe(type);
      expect(events.at(-1)?.payload).toMatchObject({
        from: "RUNNING",
        to: S[status],
        reason: "why",
      });
      expect((await record(envelopeId))?.status).toBe(S[status]);
    }
    // AUTHORIZED → TERMINATED (never ran): no started_at.
    const { envelopeId } = await open();
    const ended = await move(envelopeId, S.TERMINATED);
    expect(ended.startedAt).toBeUndefined();
    expect(ended.completedAt).toBeDefined();
  });

  it("refuses every transition the lifecycle does not allow, naming the allowed ones", async () => {
    // Paths from AUTHORIZED to each reachable status (PENDING never persists).
    const paths: Record<Exclude<EnvelopeStatusName, "PENDING">, EnvelopeStatus[]> = {
      AUTHORIZED: [],
      RUNNING: [S.RUNNING],
      PAUSED: [S.RUNNING, S.PAUSED],
      COMPLETED: [S.RUNNING, S.COMPLETED],
      FAILED: [S.RUNNING, S.FAILED],
      TERMINATED: [S.TERMINATED],
      BUDGET_EXCEEDED: [S.RUNNING, S.BUDGET_EXCEEDED],
      POLICY_VIOLATION: [S.RUNNING, S.POLICY_VIOLATION],
      TIMEOUT: [S.RUNNING, S.TIMEOUT],
    };
    const all = Object.keys(S).filter((k) => Number.isNaN(Number(k)) && k !== "UNSPECIFIED");
    let refused = 0;
    for (const [from, path] of Object.entries(paths)) {
      const { envelopeId } = await open();
      for (const step of path) await move(envelopeId, step);
      const allowed = allowedNext(from as EnvelopeStatusName);
      for (const to of all) {
        if (to === from || allowed.includes(to as EnvelopeStatusName)) continue;
        const error = await expectCode(
          move(envelopeId, S[to as keyof typeof S] as EnvelopeStatus),
          Code.FailedPrecondition,
          new RegExp(`from ${from} to ${to}`),
        );
        expect(error.rawMessage).toContain(
          allowed.length ? allowed.join(", ") : `${from} is final`,
        );
        refused++;
      }
      expect((await record(envelopeId))?.status).toBe(from);
    }
    expect(refused).toBe(69);
  });

  it("answers a repeated status unchanged, without a second event", async () => {
    const { envelopeId } = await open();
    await move(envelopeId, S.RUNNING);
    const first = await move(envelopeId, S.COMPLETED);
    await kit.stack.redis.del(kit.stack.deps.budgetKeys.envelope(kit.tenant.tenantId, envelopeId));
    const again = await move(envelopeId, S.COMPLETED);
    expect(again.updatedAt).toEqual(first.updatedAt);
    // The retry repaired the edge's copy.
    expect((await record(envelopeId))?.status).toBe("COMPLETED");
    const events = await tenantEvents(
      kit.nc,
      kit.tenant.tenantId,
      (e) => e.envelopeId === envelopeId,
      () => false,
      1000,
    );
    expect(events).toHaveLength(4);
  });

  it("is NotFound for an unknown envelope and InvalidArgument without a status", async () => {
    await expectCode(
      kit.api.updateEnvelopeStatus({
        envelopeId: "0193a1b2-0000-7000-8000-000000000000",
        status: S.RUNNING,
      }),
      Code.NotFound,
    );
    const { envelopeId } = await open();
    await expectCode(kit.api.updateEnvelopeStatus({ envelopeId }), Code.InvalidArgument);
  });
});
