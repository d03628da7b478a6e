import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  publishEnvelopeRecord,
  publishEnvelopeRecords,
} from "../../functions/src/envelopes/envelope-records.js";
import { timeOutEnvelopes } from "../../functions/src/envelopes/envelope-timeout.js";
import { type Envelope, EnvelopeStatus } from "../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";
import { EnvelopeService } from "../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import { EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { type EnvelopeKit, seconds, startEnvelopeKit } from "../harness/envelope-helpers.js";
import { expectCode } from "../harness/management-helpers.js";

// Parent / child envelopes (a child can never exceed its parent, nor outlive it), deadlines
// (TIMEOUT), and the EnvelopeRecords in Redis: ancestors, reconciliation after a flush,
// and stale writes never winning.
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
const get = async (id: string) =>
  (await kit.api.getEnvelope({ envelopeId: id })).envelope as Envelope;

describe("parent and child envelopes", () => {
  const parentGovernance = {
    tokenBudget: 1000n,
    costLimitUsd: 2,
    maxLlmCalls: 5,
    timeout: seconds(600),
    allowedModels: ["gpt-4o", "gpt-4o-mini"],
    allowedTools: ["search_*", "read_file"],
  };

  it("refuses a child whose limits exceed the parent's", async () => {
    const parent = await open({ governance: parentGovernance });
    const child = (governance: Record<string, unknown>) =>
      kit.api.createEnvelope({
        workflowId: "wf-env",
        parentEnvelopeId: parent.envelopeId,
        governance,
      });
    await expectCode(
      child({ tokenBudget: 1001n }),
      Code.FailedPrecondition,
      /token_budget \(1001\) exceeds the parent envelope/,
    );
    await expectCode(child({ costLimitUsd: 2.5 }), Code.FailedPrecondition, /cost_limit_usd/);
    await expectCode(child({ maxLlmCalls: 6 }), Code.FailedPrecondition, /max_llm_calls/);
    await expectCode(child({ timeout: seconds(601) }), Code.FailedPrecondition, /timeout/);
    await expectCode(
      child({ allowedModels: ["claude-3"] }),
      Code.FailedPrecondition,
      /allowed_models lists "claude-3"/,
    );
    await expectCode(
      child({ allowedTools: ["delete_file"] }),
      Code.FailedPrecondition,
      /allowed_tools/,
    );
    await expectCode(child({ allowedTools: ["*"] }), Code.FailedPrecondition, /allowed_tools/);
    const { rows } = await kit.stack.owner.query(
      "SELECT count(*)::int AS n FROM envelopes WHERE parent_envelope_id = $1",
      [parent.envelopeId],
    );
    expect(rows[0]).toEqual({ n: 0 });
  });

  it("opens a child within the parent's limits, inheriting what it leaves unset", async () => {
    const parent = await open({ governance: parentGovernance });
    await move(parent.envelopeId, S.RUNNING);
    const child = await open({
      parentEnvelopeId: parent.envelopeId,
      governance: {
        tokenBudget: 400n,
        allowedModels: ["gpt-4o-mini"],
        allowedTools: ["search_web", "read_file"],
      },
    });
    expect(child.status).toBe(S.AUTHORIZED);
    expect(child.parentEnvelopeId).toBe(parent.envelopeId);
    expect(child.governance).toMatchObject({ tokenBudget: 400n, costLimitUsd: 2, maxLlmCalls: 5 });
    expect(await record(child.envelopeId)).toMatchObject({
      parentId: parent.envelopeId,
      ancestors: [parent.envelopeId],
      limits: { tokens: 400, costMicros: 2_000_000, llmCalls: 5 },
      allowedModels: ["gpt-4o-mini"],
      allowedTools: ["search_web", "read_file"],
    });
    // A child that sets nothing gets the parent's limits and lists; a grandchild lists both.
    const plain = await open({ parentEnvelopeId: child.envelopeId });
    expect(await record(plain.envelopeId)).toMatchObject({
      ancestors: [child.envelopeId, parent.envelopeId],
      limits: { tokens: 400, costMicros: 2_000_000, llmCalls: 5 },
      allowedModels: ["gpt-4o-mini"],
    });
  });

  it("refuses a child of an unknown or finished parent", async () => {
    await expectCode(
      kit.api.createEnvelope({
        workflowId: "wf",
        parentEnvelopeId: "0193a1b2-0000-7000-8000-000000000000",
      }),
      Code.InvalidArgument,
      /does not exist/,
    );
    const parent = await open();
    await move(parent.envelopeId, S.TERMINATED);
    await expectCode(
      kit.api.createEnvelope({ workflowId: "wf", parentEnvelopeId: parent.envelopeId }),
      Code.FailedPrecondition,
      /is TERMINATED/,
    );
  });
});

describe("ending a parent ends its tree", () => {
  it("terminates the open child and grandchild, each with its event and record", async () => {
    const parent = await open({ governance: { timeout: seconds(600) } });
    await move(parent.envelopeId, S.RUNNING);
    const child = await open({ parentEnvelopeId: parent.envelopeId });
    await move(child.envelopeId, S.RUNNING);
    const grandchild = await open({ parentEnvelopeId: child.envelopeId });
    await move(grandchild.envelopeId, S.RUNNING);

    await move(parent.envelopeId, S.TERMINATED, "operator stop");
    // Each names its own parent: the grandchild's ended (TERMINATED) with the parent.
    const reasons = {
      [child.envelopeId]: `parent envelope ${parent.envelopeId} ended TERMINATED`,
      [grandchild.envelopeId]: `parent envelope ${child.envelopeId} ended TERMINATED`,
    };
    for (const [id, reason] of Object.entries(reasons)) {
      const env = await get(id);
      expect(env.status).toBe(S.TERMINATED);
      expect(env.statusReason).toBe(reason);
      expect(env.completedAt).toBeDefined();
      const events = await eventsOf(id, 4);
      expect(events.map((e) => EventType[e.eventType]).at(-1)).toBe("EXECUTION_TERMINATED");
      expect(events.at(-1)?.payload).toMatchObject({ from: "RUNNING", to: "TERMINATED", reason });
      expect((await record(id))?.status).toBe("TERMINATED");
    }
    // Ending the parent again changes nothing more (idempotent).
    expect((await move(parent.envelopeId, S.TERMINATED)).status).toBe(S.TERMINATED);
    expect(await eventsOf(child.envelopeId, 5, 1000)).toHaveLength(4);
  });

  it("leaves a finished child as it is and ends the others with the parent's status", async () => {
    const parent = await open();
    await move(parent.envelopeId, S.RUNNING);
    const done = await open({ parentEnvelopeId: parent.envelopeId });
    await move(done.envelopeId, S.RUNNING);
    await move(done.envelopeId, S.COMPLETED, "finished");
    const waiting = await open({ parentEnvelopeId: parent.envelopeId });

    await move(parent.envelopeId, S.COMPLETED);
    expect(await get(done.envelopeId)).toMatchObject({
      status: S.COMPLETED,
      statusReason: "finished",
    });
    expect(await eventsOf(done.envelopeId, 5, 1000)).toHaveLength(4);
    expect((await record(done.envelopeId))?.status).toBe("COMPLETED");
    // Never started (AUTHORIZED) ends too: no call may begin under a finished parent.
    expect(await get(waiting.envelopeId)).toMatchObject({
      status: S.TERMINATED,
      statusReason: `parent envelope ${parent.envelopeId} ended COMPLETED`,
    });
    expect((await record(waiting.envelopeId))?.status).toBe("TERMINATED");
  });
});

describe("a child never outlives its parent", () => {
  const deadlineOf = async (id: string) => {
    const { rows } = await kit.stack.owner.query<{ d: Date | null }>(
      "SELECT deadline_at AS d FROM envelopes WHERE id = $1",
      [id],
    );
    return rows[0]?.d?.getTime();
  };
  // A parent started long ago: its deadline is near although its timeout is long.
  const shorten = (id: string, s: number) =>
    kit.stack.owner.query(
      `UPDATE envelopes SET deadline_at = now() + $2 * interval '1 second' WHERE id = $1`,
      [id, s],
    );

  it("takes the parent's deadline when it comes before its own", async () => {
    const parent = await open({ governance: { timeout: seconds(600) } });
    await move(parent.envelopeId, S.RUNNING);
    await shorten(parent.envelopeId, 30);
    const child = await open({ parentEnvelopeId: parent.envelopeId });
    expect(child.governance?.timeout?.seconds).toBe(600n);
    await move(child.envelopeId, S.RUNNING);
    const parentDeadline = await deadlineOf(parent.envelopeId);
    expect(await deadlineOf(child.envelopeId)).toBe(parentDeadline);
    expect((await record(child.envelopeId))?.deadlineMs).toBe(parentDeadline);

    // Its own, when that is earlier.
    const short = await open({
      parentEnvelopeId: parent.envelopeId,
      governance: { timeout: seconds(5) },
    });
    await move(short.envelopeId, S.RUNNING);
    expect(await deadlineOf(short.envelopeId)).toBeLessThan(parentDeadline ?? 0);
  });

  it("inherits an ancestor's deadline without a timeout of its own", async () => {
    const parent = await open();
    await move(parent.envelopeId, S.RUNNING);
    await shorten(parent.envelopeId, 30);
    const child = await open({ parentEnvelopeId: parent.envelopeId });
    const grandchild = await open({ parentEnvelopeId: child.envelopeId });
    // The grandchild starts while its own parent has not: the grandparent's deadline holds.
    await move(grandchild.envelopeId, S.RUNNING);
    const parentDeadline = await deadlineOf(parent.envelopeId);
    expect(parentDeadline).toBeDefined();
    expect(await deadlineOf(grandchild.envelopeId)).toBe(parentDeadline);
    await move(child.envelopeId, S.RUNNING);
    expect((await record(child.envelopeId))?.deadlineMs).toBe(parentDeadline);
  });
});

describe("deadlines", () => {
  const pastDeadline = () => new Promise((resolve) => setTimeout(resolve, 1100));
  const eventTypes = (events: { eventType: EventType }[]) =>
    events.map((e) => EventType[e.eventType]);

  it("reads TIMEOUT once the deadline passed; timeOutEnvelopes writes it and ends the tree", async () => {
    const parent = await open({ governance: { timeout: seconds(1) } });
    await move(parent.envelopeId, S.RUNNING);
    // Started: inherits the parent's deadline, so it is overdue with it (TIMEOUT itself).
    const running = await open({ parentEnvelopeId: parent.envelopeId });
    await move(running.envelopeId, S.RUNNING);
    // Never started: no deadline of its own, ended by the parent's cascade.
    const waiting = await open({ parentEnvelopeId: parent.envelopeId });
    await pastDeadline();

    // Before the sweep: reported, nothing written or emitted.
    const reported = await get(parent.envelopeId);
    expect(reported.status).toBe(S.TIMEOUT);
    expect(reported.statusReason).toMatch(/^timed out at \d{4}-\d\d-\d\dT/);
    expect(reported.costSummary?.executionTime?.seconds).toBe(1n);
    expect((await record(parent.envelopeId))?.status).toBe("RUNNING");
    expect(await eventsOf(parent.envelopeId, 4, 500)).toHaveLength(3);

    // Other tests' short envelopes of the tenant may be overdue as well.
    expect(
      await timeOutEnvelopes(kit.stack.deps, kit.tenant.tenantId, new Date()),
    ).toBeGreaterThanOrEqual(2);
    const stored = await get(parent.envelopeId);
    expect(stored).toMatchObject({ status: S.TIMEOUT, statusReason: reported.statusReason });
    expect(stored.completedAt).toEqual(reported.completedAt);
    const events = await eventsOf(parent.envelopeId, 4);
    expect(eventTypes(events).at(-1)).toBe("EXECUTION_FAILED");
    expect(events.at(-1)?.payload).toMatchObject({
      from: "RUNNING",
      to: "TIMEOUT",
      reason: reported.statusReason,
    });
    expect((await record(parent.envelopeId))?.status).toBe("TIMEOUT");

    expect(await get(running.envelopeId)).toMatchObject({ status: S.TIMEOUT });
    expect(eventTypes(await eventsOf(running.envelopeId, 4)).at(-1)).toBe("EXECUTION_FAILED");
    expect((await record(running.envelopeId))?.status).toBe("TIMEOUT");
    const cascaded = `parent envelope ${parent.envelopeId} ended TIMEOUT`;
    expect(await get(waiting.envelopeId)).toMatchObject({
      status: S.TERMINATED,
      statusReason: cascaded,
    });
    const waitingEvents = await eventsOf(waiting.envelopeId, 3);
    expect(eventTypes(waitingEvents).at(-1)).toBe("EXECUTION_TERMINATED");
    expect((await record(waiting.envelopeId))?.status).toBe("TERMINATED");

    // Done once: a second run finds nothing of this tree, and TIMEOUT is final.
    await timeOutEnvelopes(kit.stack.deps, kit.tenant.tenantId, new Date());
    expect(await eventsOf(parent.envelopeId, 5, 500)).toHaveLength(4);
    await expectCode(move(parent.envelopeId, S.COMPLETED), Code.FailedPrecondition, /TIMEOUT/);
  });

  it("times out an overdue envelope before judging a requested status", async () => {
    const late = await open({ governance: { timeout: seconds(1) } });
    await move(late.envelopeId, S.RUNNING);
    await pastDeadline();
    // The SDK's complete() after the deadline: refused, but the TIMEOUT is kept.
    await expectCode(
      move(late.envelopeId, S.COMPLETED),
      Code.FailedPrecondition,
      /from TIMEOUT to COMPLETED; TIMEOUT is final/,
    );
    expect((await get(late.envelopeId)).status).toBe(S.TIMEOUT);
    expect((await record(late.envelopeId))?.status).toBe("TIMEOUT");
    expect(eventTypes(await eventsOf(late.envelopeId, 4))).toEqual([
      "CUSTOM",
      "CUSTOM",
      "EXECUTION_STARTED",
      "EXECUTION_FAILED",
    ]);
    // Asking for TIMEOUT itself answers it (idempotent).
    expect((await move(late.envelopeId, S.TIMEOUT)).status).toBe(S.TIMEOUT);
  });
});

describe("reconciliation of envelope records", () => {
  it("rewrites the records of every non-terminal envelope after a flush", async () => {
    const t = await kit.stack.createTenant();
    const client = kit.stack.client(EnvelopeService, t.adminKey);
    const live = (await client.createEnvelope({ workflowId: "wf" })).envelope as Envelope;
    const child = (
      await client.createEnvelope({ workflowId: "wf", parentEnvelopeId: live.envelopeId })
    ).envelope as Envelope;
    const done = (await client.createEnvelope({ workflowId: "wf" })).envelope as Envelope;
    await client.updateEnvelopeStatus({ envelopeId: done.envelopeId, status: S.TERMINATED });
    const keys = [live, child, done].map((e) =>
      kit.stack.deps.budgetKeys.envelope(t.tenantId, e.envelopeId),
    );
    await kit.stack.redis.del(...keys);
    expect(await publishEnvelopeRecords(kit.stack.deps, t.tenantId)).toBe(2);
    expect((await record(live.envelopeId, t.tenantId))?.status).toBe("AUTHORIZED");
    expect((await record(child.envelopeId, t.tenantId))?.ancestors).toEqual([live.envelopeId]);
    expect(await record(done.envelopeId, t.tenantId)).toBeNull();
  });

  it("never lets an older record replace a newer one", async () => {
    // A publisher that read the row before the latest transition writes last: simulated
    // by rewinding the row (status and updated_at) and publishing from it.
    const rewind = (id: string, status: string) =>
      kit.stack.owner.query(
        `UPDATE envelopes SET status = $2, updated_at = updated_at - interval '1 second' WHERE id = $1`,
        [id, status],
      );
    const paused = await open();
    await move(paused.envelopeId, S.RUNNING);
    await move(paused.envelopeId, S.PAUSED);
    await rewind(paused.envelopeId, "RUNNING");
    await publishEnvelopeRecord(kit.stack.deps, kit.tenant.tenantId, paused.envelopeId);
    expect((await record(paused.envelopeId))?.status).toBe("PAUSED");

    // A terminal record is never replaced by a live one, whatever its time.
    const done = await open();
    await move(done.envelopeId, S.TERMINATED);
    await kit.stack.owner.query(
      `UPDATE envelopes SET status = 'AUTHORIZED', updated_at = now() + interval '1 hour' WHERE id = $1`,
      [done.envelopeId],
    );
    await publishEnvelopeRecord(kit.stack.deps, kit.tenant.tenantId, done.envelopeId);
    expect((await record(done.envelopeId))?.status).toBe("TERMINATED");
  });
});
