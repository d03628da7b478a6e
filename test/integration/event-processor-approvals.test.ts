/**
 * The event processor records approvals: an APPROVAL_REQUESTED event (as the edge
 * publishes it) becomes the `approvals` row with the approval's id, once however often
 * it is delivered, under its tenant only; an ALLOW decision with reason APPROVED marks
 * the approval consumed. Real NATS, ClickHouse and PostgreSQL, the processor in-process.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from "vitest";
import { encodeEvent, newEvent } from "../../core/audit/event-codec.js";
import { DEFAULT_EVENT_STREAM_SETTINGS } from "../../core/audit/event-stream.js";
import { eventSubject } from "../../core/audit/event-subject.js";
import { uuidv7 } from "../../core/ids/uuidv7.js";
import {
  DecisionDetailsSchema,
  type Event,
  EventType,
} from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { Decision, DecisionReason } from "../../proto/gen/fulcrum/policy/v1/evaluation_pb.js";
import { M } from "../../workers/event-processor/src/metrics.js";
import {
  type EventProcessor,
  startEventProcessor,
} from "../../workers/event-processor/src/processor.js";
import { type TestClickHouse, testClickHouse } from "../harness/clickhouse.js";
import {
  type EventsDatabase,
  eventually,
  openEventsDatabase,
  processorConfig,
  producer,
  publishEvents,
  sleep,
} from "../harness/event-processor.js";
import { startTestNats, type TestNats } from "../harness/nats-server.js";

let db: EventsDatabase;
let nats: TestNats;
let ch: TestClickHouse;
let pub: Awaited<ReturnType<typeof producer>>;
let processor: EventProcessor;
const streams = { ...DEFAULT_EVENT_STREAM_SETTINGS, duplicateWindowMs: 1000 };

beforeAll(async () => {
  db = await openEventsDatabase(inject("pgAddress"));
  nats = await startTestNats();
  ch = await testClickHouse();
  pub = await producer(nats.url, streams);
  processor = await startEventProcessor(
    processorConfig({ natsUrl: nats.url, clickhouse: ch.config, db, streams }),
    { info: () => {}, error: () => {} },
  );
  await processor.ready;
}, 60_000);
afterAll(async () => {
  await processor?.stop();
  await pub?.close();
  await nats?.stop();
  await ch?.drop();
  await db?.close();
});
afterEach(async () => {
  await db.fresh.owner.pool.query("DELETE FROM approvals");
});

const approvalRows = async (tenantId: string) => {
  const { rows } = await db.fresh.owner.pool.query(
    "SELECT * FROM approvals WHERE tenant_id = $1 ORDER BY created_at",
    [tenantId],
  );
  return rows;
};

/** An APPROVAL_REQUESTED event shaped like the edge's (edge/src/approvals/approval-event.ts). */
function approvalRequested(
  tenantId: string,
  overrides: { approvalId?: string; expiresInMs?: number; envelopeId?: string } = {},
): { event: Event; approvalId: string } {
  const approvalId = overrides.approvalId ?? uuidv7();
  const now = Date.now();
  const decisionUuid = uuidv7();
  const envelopeId = overrides.envelopeId ?? "";
  const event = newEvent({
    eventId: uuidv7(now),
    tenantId,
    executionId: envelopeId || approvalId,
    envelopeId,
    workflowId: "wf-deploys",
    eventType: EventType.APPROVAL_REQUESTED,
    timestamp: timestampFromMs(now),
    source: "fulcrum-edge",
    payload: {
      approval_id: approvalId,
      arguments_hash: "a".repeat(64),
      decision_id: `dec_${decisionUuid}`,
      requested_by: "key-123",
      action: "",
      tool_names: ["delete_db"],
      reasons: ["deletes need a human", "second reason"],
      policy_ids: ["policy-a"],
      policy_id: "policy-a",
      rule_id: "needs-review",
      workflow_id: "wf-deploys",
      envelope_id: envelopeId,
      expires_at: new Date(now + (overrides.expiresInMs ?? 3_600_000)).toISOString(),
    },
    policyResult: {
      policyId: "policy-a",
      ruleId: "needs-review",
      decision: Decision.REQUIRE_APPROVAL,
      reason: "deletes need a human",
      decisionId: `dec_${decisionUuid}`,
    },
  });
  return { event, approvalId };
}

async function settled(n: number) {
  await eventually(`${n} events stored`, async () => processor.metrics.value(M.stored) >= n);
}

describe("approvals from the event stream", () => {
  it("inserts the approvals row from APPROVAL_REQUESTED, once, under its tenant", async () => {
    const before = processor.metrics.value(M.stored);
    const { event, approvalId } = approvalRequested(db.tenantA, {
      envelopeId: crypto.randomUUID(), // no such envelope: the row keeps none
    });
    await publishEvents(pub.js, [event]);
    await settled(before + 1);
    await eventually("approval row", async () => (await approvalRows(db.tenantA)).length === 1);

    const [row] = await approvalRows(db.tenantA);
    expect(row).toMatchObject({
      id: approvalId,
      tenant_id: db.tenantA,
      status: "PENDING",
      action_name: "delete_db",
      workflow_id: "wf-deploys",
      reason: "deletes need a human",
      reasons: ["deletes need a human", "second reason"],
      arguments_hash: "a".repeat(64),
      rule_id: "needs-review",
      requested_by: "key-123",
      envelope_id: null,
      policy_id: null,
      consumed_at: null,
    });
    expect(row.decision_id).toBe(
      String(event.payload?.decision_id ?? "")
        .replace(/^dec_/, "")
        .toLowerCase(),
    );
    expect(row.context).toMatchObject({ tool_names: ["delete_db"], policy_ids: ["policy-a"] });
    expect(new Date(row.expires_at).toISOString()).toBe(event.payload?.expires_at);
    // The governance event itself is in `events` too.
    const { rows: audit } = await db.fresh.owner.pool.query(
      "SELECT action FROM events WHERE id = $1",
      [event.eventId],
    );
    expect(audit).toEqual([{ action: "approval.requested" }]);

    // Published again after the duplicate window (a new stream message): still one row.
    await sleep(1100);
    const stored = processor.metrics.value(M.stored);
    await pub.js.publish(eventSubject(event.tenantId, event.eventType), encodeEvent(event), {
      msgID: event.eventId,
    });
    await settled(stored + 1);
    expect(await approvalRows(db.tenantA)).toHaveLength(1);
    expect(await approvalRows(db.tenantB)).toHaveLength(0);
  });

  it("keeps an envelope that exists in the tenant", async () => {
    const envelopeId = crypto.randomUUID();
    await db.fresh.owner.pool.query(
      `INSERT INTO envelopes (id, tenant_id, workflow_id, execution_id, status)
       VALUES ($1, $2, 'wf', $3, 'RUNNING')`,
      [envelopeId, db.tenantA, `exec-${envelopeId}`],
    );
    const before = processor.metrics.value(M.stored);
    const { event } = approvalRequested(db.tenantA, { envelopeId });
    await publishEvents(pub.js, [event]);
    await settled(before + 1);
    await eventually("approval row", async () => (await approvalRows(db.tenantA)).length === 1);
    expect((await approvalRows(db.tenantA))[0]?.envelope_id).toBe(envelopeId);
  });

  it("skips approvals it can never record, without holding the stream back", async () => {
    const before = processor.metrics.value(M.stored);
    const expired = approvalRequested(db.tenantA, { expiresInMs: -1000 }).event;
    const ghost = approvalRequested(crypto.randomUUID()).event; // no such tenant
    const good = approvalRequested(db.tenantB);
    await publishEvents(pub.js, [expired, ghost, good.event]);
    await settled(before + 3);
    await eventually("good row", async () => (await approvalRows(db.tenantB)).length === 1);
    expect(await approvalRows(db.tenantA)).toHaveLength(0);
    // The ghost tenant's events row and its approval, each refused by the tenant's key.
    expect(processor.metrics.value(M.governanceSkipped, { reason: "tenant_not_found" })).toBe(2);
    expect(processor.metrics.value(M.governanceSkipped, { reason: "approval not recorded" })).toBe(
      1,
    );
  });

  it("marks an approval consumed by an APPROVED decision", async () => {
    const before = processor.metrics.value(M.stored);
    const { event, approvalId } = approvalRequested(db.tenantA);
    await publishEvents(pub.js, [event]);
    await settled(before + 1);
    await eventually("approval row", async () => (await approvalRows(db.tenantA)).length === 1);

    const decidedAt = Date.now();
    const allow = newEvent({
      eventId: uuidv7(decidedAt),
      tenantId: db.tenantA,
      executionId: approvalId,
      eventType: EventType.POLICY_EVALUATED,
      timestamp: timestampFromMs(decidedAt),
      source: "fulcrum-edge",
      policyResult: { decision: Decision.ALLOW, reason: "APPROVED" },
      details: {
        case: "decision",
        value: create(DecisionDetailsSchema, {
          method: "CheckPolicy",
          reason: DecisionReason.APPROVED,
          approvalId,
        }),
      },
    });
    await publishEvents(pub.js, [allow]);
    await eventually("consumed", async () => {
      const [row] = await approvalRows(db.tenantA);
      return row?.consumed_at !== null && row?.consumed_at !== undefined;
    });
    const [row] = await approvalRows(db.tenantA);
    expect(new Date(row.consumed_at).getTime()).toBe(decidedAt);
  });
});
