import { randomBytes } from "node:crypto";
import { type Client, Code } from "@connectrpc/connect";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uuidv7 } from "../../core/ids/uuidv7.js";
import { expireApprovals } from "../../functions/src/approvals/approval-expiry.js";
import { restoreApprovalKeys } from "../../functions/src/approvals/approval-keys.js";
import { EnvelopeService } from "../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import { type Event, EventType } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { ApprovalStatus } from "../../proto/gen/fulcrum/policy/v1/approval_pb.js";
import { PolicyService } from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { UserRole } from "../../proto/gen/fulcrum/tenant/v1/user_pb.js";
import { type FunctionsStack, startFunctionsStack } from "../harness/functions-stack.js";
import { tenantEvents } from "../harness/jetstream-events.js";
import { expectCode, userWithKey } from "../harness/management-helpers.js";
import { startTestNats, type TestNats } from "../harness/nats-server.js";

// PolicyService's approval methods over the real stack. Approval rows are inserted
// directly (in production the event processor inserts them from the edge's
// APPROVAL_REQUESTED events), with the edge's pending key beside them.
let nats: TestNats;
let nc: NatsConnection;
let stack: FunctionsStack;
type Tenant = Awaited<ReturnType<FunctionsStack["createTenant"]>>;
let tenant: Tenant;
let other: Tenant;
let api: Client<typeof PolicyService>;

beforeAll(async () => {
  nats = await startTestNats();
  stack = await startFunctionsStack(undefined, { natsUrl: nats.url });
  tenant = await stack.createTenant();
  other = await stack.createTenant();
  api = stack.client(PolicyService, tenant.adminKey);
  nc = await connect({ servers: nats.url });
}, 120_000);
afterAll(async () => {
  await nc?.close();
  await stack?.stop();
  await nats?.stop();
});

const A = ApprovalStatus;
const keys = () => stack.deps.budgetKeys;

interface Seed {
  tenantId?: string;
  status?: string;
  workflowId?: string;
  envelopeId?: string | null;
  /** Minutes from now; negative: already expired. */
  expiresInMin?: number;
  createdMinAgo?: number;
  hash?: string;
  pendingKey?: boolean;
}

/** An approval row as the event processor writes it, and the edge's pending key. */
async function seed(s: Seed = {}): Promise<{ id: string; hash: string; tenantId: string }> {
  const id = uuidv7();
  const tenantId = s.tenantId ?? tenant.tenantId;
  const hash = s.hash ?? randomBytes(32).toString("hex");
  const expiresIn = s.expiresInMin ?? 60;
  const createdAgo = s.createdMinAgo ?? Math.max(1, -expiresIn + 1);
  await stack.owner.query(
    `INSERT INTO approvals (id, tenant_id, envelope_id, workflow_id, action_name, status,
       expires_at, created_at, arguments_hash, decision_id, rule_id, requested_by, reasons, context, reviewed_at)
     VALUES ($1, $2, $3, $4, 'delete_user', $5, now() + $6 * interval '1 minute',
       now() - $7 * interval '1 minute', $8, $9, 'needs-review', 'key-1', '{"deletes data"}',
       '{"tool_names": ["delete_user"], "model_id": "gpt-4o"}',
       CASE WHEN $5 IN ('APPROVED', 'REJECTED') THEN now() END)`,
    [
      id,
      tenantId,
      s.envelopeId ?? null,
      s.workflowId ?? "wf-appr",
      s.status ?? "PENDING",
      expiresIn,
      createdAgo,
      hash,
      uuidv7(),
    ],
  );
  if (s.pendingKey !== false && expiresIn > 0) {
    await stack.redis.set(keys().approvalPending(tenantId, hash), id, { px: expiresIn * 60_000 });
  }
  return { id, hash, tenantId };
}

function approvalEvents(id: string, count: number, ms = 5000): Promise<Event[]> {
  return tenantEvents(
    nc,
    tenant.tenantId,
    (e) => e.payload?.approval_id === id,
    (kept) => kept.length >= count,
    ms,
  );
}

describe("GetApproval", () => {
  it("answers the approval with its stored fields", async () => {
    const { id, hash } = await seed();
    const { approval } = await api.getApproval({ approvalId: id });
    expect(approval).toMatchObject({
      approvalId: id,
      tenantId: tenant.tenantId,
      workflowId: "wf-appr",
      action: "delete_user",
      status: A.PENDING,
      ruleId: "needs-review",
      requestedBy: "key-1",
      reasons: ["deletes data"],
      argumentsHash: hash,
      reviewer: "",
    });
    expect(approval?.context?.toolNames).toEqual(["delete_user"]);
    expect(approval?.expiresAt).toBeDefined();
    expect(approval?.consumedAt).toBeUndefined();
  });

  it("reads a pending approval past expires_at as EXPIRED", async () => {
    const { id } = await seed({ expiresInMin: -5 });
    expect((await api.getApproval({ approvalId: id })).approval?.status).toBe(A.EXPIRED);
  });

  it("is NotFound for unknown ids and another tenant's approvals", async () => {
    const { id } = await seed({ tenantId: other.tenantId });
    await expectCode(api.getApproval({ approvalId: id }), Code.NotFound, /poll again shortly/);
    await expectCode(api.getApproval({ approvalId: "not-a-uuid" }), Code.NotFound);
  });
});

describe("ListApprovals", () => {
  it("lists newest first with filters and pages", async () => {
    const t = await stack.createTenant();
    const client = stack.client(PolicyService, t.adminKey);
    const env = await stack
      .client(EnvelopeService, t.adminKey)
      .createEnvelope({ workflowId: "wf-list" });
    const envelopeId = env.envelope?.envelopeId as string;
    const oldest = await seed({ tenantId: t.tenantId, createdMinAgo: 50 });
    const expired = await seed({ tenantId: t.tenantId, expiresInMin: -10, createdMinAgo: 40 });
    const approved = await seed({ tenantId: t.tenantId, status: "APPROVED", createdMinAgo: 30 });
    await stack.owner.query("UPDATE approvals SET reviewed_at = now() WHERE id = $1", [
      approved.id,
    ]);
    const other2 = await seed({ tenantId: t.tenantId, workflowId: "wf-b", createdMinAgo: 20 });
    const enveloped = await seed({ tenantId: t.tenantId, envelopeId, createdMinAgo: 10 });

    const ids = async (req: Parameters<typeof client.listApprovals>[0]) =>
      (await client.listApprovals(req)).approvals.map((a) => a.approvalId);
    expect(await ids({})).toEqual([enveloped.id, other2.id, approved.id, expired.id, oldest.id]);
    expect(await ids({ status: A.PENDING })).toEqual([enveloped.id, other2.id, oldest.id]);
    expect(await ids({ status: A.EXPIRED })).toEqual([expired.id]);
    expect(await ids({ status: A.APPROVED })).toEqual([approved.id]);
    expect(await ids({ workflowId: "wf-b" })).toEqual([other2.id]);
    expect(await ids({ envelopeId })).toEqual([enveloped.id]);

    const first = await client.listApprovals({ pageSize: 2 });
    expect(first.approvals.map((a) => a.approvalId)).toEqual([enveloped.id, other2.id]);
    const second = await client.listApprovals({ pageSize: 2, pageToken: first.nextPageToken });
    expect(second.approvals.map((a) => a.approvalId)).toEqual([approved.id, expired.id]);
    const third = await client.listApprovals({ pageSize: 2, pageToken: second.nextPageToken });
    expect(third.approvals.map((a) => a.approvalId)).toEqual([oldest.id]);
    expect(third.nextPageToken).toBe("");
    await expectCode(
      client.listApprovals({ pageSize: 2, pageToken: first.nextPageToken, status: A.PENDING }),
      Code.InvalidArgument,
      /page_token/,
    );
    await expectCode(client.listApprovals({ policyId: "nope" }), Code.InvalidArgument);
    // Another tenant sees none of them.
    expect((await api.listApprovals({ workflowId: "wf-b" })).approvals).toEqual([]);
  });

  it("is open to viewers", async () => {
    const viewer = await userWithKey(stack, tenant.adminKey, UserRole.VIEWER);
    const { id } = await seed();
    const res = await stack.client(PolicyService, viewer.key).getApproval({ approvalId: id });
    expect(res.approval?.approvalId).toBe(id);
  });
});

describe("UpdateApproval", () => {
  it("approves: the grant replaces the pending key, and APPROVAL_GRANTED is emitted", async () => {
    const { id, hash } = await seed();
    const { approval } = await api.updateApproval({
      approvalId: id,
      status: A.APPROVED,
      reviewNote: "fine",
    });
    expect(approval).toMatchObject({
      status: A.APPROVED,
      reviewer: tenant.adminUserId,
      reviewNote: "fine",
    });
    expect(approval?.reviewedAt).toBeDefined();
    expect(await stack.redis.get(keys().approvalGrant(tenant.tenantId, hash))).toBe(id);
    const ttl = await stack.redis.pttl(keys().approvalGrant(tenant.tenantId, hash));
    expect(ttl).toBeGreaterThan(3_500_000);
    expect(ttl).toBeLessThanOrEqual(3_600_000);
    expect(await stack.redis.get(keys().approvalPending(tenant.tenantId, hash))).toBeNull();
    const { rows } = await stack.owner.query(
      "SELECT status, reviewer, reviewer_id::text AS reviewer_id FROM approvals WHERE id = $1",
      [id],
    );
    expect(rows[0]).toEqual({
      status: "APPROVED",
      reviewer: tenant.adminUserId,
      reviewer_id: tenant.adminUserId,
    });
    const events = await approvalEvents(id, 1);
    expect(events.map((e) => EventType[e.eventType])).toEqual(["APPROVAL_GRANTED"]);
    expect(events[0]?.payload).toMatchObject({ arguments_hash: hash, review_note: "fine" });
  });

  it("rejects: the rejection marker carries the reviewer and note", async () => {
    const { id, hash } = await seed();
    const { approval } = await api.updateApproval({
      approvalId: id,
      status: A.REJECTED,
      reviewer: "alice@example.com",
      reviewNote: "not on prod",
    });
    expect(approval).toMatchObject({ status: A.REJECTED, reviewer: "alice@example.com" });
    expect(await stack.redis.get(keys().approvalRejected(tenant.tenantId, hash))).toEqual({
      approvalId: id,
      reviewer: "alice@example.com",
      note: "not on prod",
    });
    expect(await stack.redis.get(keys().approvalPending(tenant.tenantId, hash))).toBeNull();
    expect(await stack.redis.get(keys().approvalGrant(tenant.tenantId, hash))).toBeNull();
    const events = await approvalEvents(id, 1);
    expect(events.map((e) => EventType[e.eventType])).toEqual(["APPROVAL_REJECTED"]);
  });

  it("cancels: the pending key goes, nothing else is written", async () => {
    const { id, hash } = await seed();
    const { approval } = await api.updateApproval({ approvalId: id, status: A.CANCELLED });
    expect(approval?.status).toBe(A.CANCELLED);
    expect(approval?.reviewedAt).toBeUndefined();
    expect(await stack.redis.get(keys().approvalPending(tenant.tenantId, hash))).toBeNull();
    expect(await stack.redis.get(keys().approvalGrant(tenant.tenantId, hash))).toBeNull();
  });

  it("keeps a pending key that names a newer approval of the same call", async () => {
    const { id, hash } = await seed({ pendingKey: false });
    await stack.redis.set(keys().approvalPending(tenant.tenantId, hash), "newer-approval");
    await api.updateApproval({ approvalId: id, status: A.APPROVED });
    expect(await stack.redis.get(keys().approvalPending(tenant.tenantId, hash))).toBe(
      "newer-approval",
    );
  });

  it("refuses an approval already reviewed, and an expired one", async () => {
    const { id } = await seed();
    await api.updateApproval({ approvalId: id, status: A.REJECTED, reviewNote: "no" });
    await expectCode(
      api.updateApproval({ approvalId: id, status: A.APPROVED }),
      Code.FailedPrecondition,
      /already REJECTED by .* a reviewed approval cannot be changed/,
    );
    const expired = await seed({ expiresInMin: -1 });
    await expectCode(
      api.updateApproval({ approvalId: expired.id, status: A.APPROVED }),
      Code.FailedPrecondition,
      /expired at .*; retry the call to request a new approval/,
    );
    expect(await stack.redis.get(keys().approvalGrant(tenant.tenantId, expired.hash))).toBeNull();
    // Marked EXPIRED by reconciliation: the same answer, not "already reviewed".
    const marked = await seed({ status: "EXPIRED", expiresInMin: -1 });
    await expectCode(
      api.updateApproval({ approvalId: marked.id, status: A.APPROVED }),
      Code.FailedPrecondition,
      /expired at .*; retry the call to request a new approval/,
    );
    await expectCode(
      api.updateApproval({ approvalId: uuidv7(), status: A.APPROVED }),
      Code.NotFound,
    );
    await expectCode(
      api.updateApproval({ approvalId: id, status: A.EXPIRED }),
      Code.InvalidArgument,
    );
  });

  it("needs approvals.review: viewers may not review", async () => {
    const viewer = await userWithKey(stack, tenant.adminKey, UserRole.VIEWER);
    const author = await userWithKey(stack, tenant.adminKey, UserRole.POLICY_AUTHOR);
    const { id } = await seed();
    await expectCode(
      stack
        .client(PolicyService, viewer.key)
        .updateApproval({ approvalId: id, status: A.APPROVED }),
      Code.PermissionDenied,
    );
    const res = await stack
      .client(PolicyService, author.key)
      .updateApproval({ approvalId: id, status: A.APPROVED });
    expect(res.approval?.reviewer).toBe(author.userId);
  });
});

describe("reconciliation of approvals", () => {
  it("restores pending keys, unconsumed grants and rejection markers after a flush", async () => {
    const t = await stack.createTenant();
    const client = stack.client(PolicyService, t.adminKey);
    const pending = await seed({ tenantId: t.tenantId });
    const approved = await seed({ tenantId: t.tenantId });
    const rejected = await seed({ tenantId: t.tenantId });
    const consumed = await seed({ tenantId: t.tenantId });
    await client.updateApproval({ approvalId: approved.id, status: A.APPROVED });
    await client.updateApproval({ approvalId: rejected.id, status: A.REJECTED, reviewNote: "no" });
    await client.updateApproval({ approvalId: consumed.id, status: A.APPROVED });
    await stack.owner.query("UPDATE approvals SET consumed_at = now() WHERE id = $1", [
      consumed.id,
    ]);
    const k = keys();
    await stack.redis.del(
      k.approvalPending(t.tenantId, pending.hash),
      k.approvalGrant(t.tenantId, approved.hash),
      k.approvalRejected(t.tenantId, rejected.hash),
      k.approvalGrant(t.tenantId, consumed.hash),
    );
    expect(await restoreApprovalKeys(stack.deps, t.tenantId, new Date())).toBe(3);
    expect(await stack.redis.get(k.approvalPending(t.tenantId, pending.hash))).toBe(pending.id);
    expect(await stack.redis.pttl(k.approvalPending(t.tenantId, pending.hash))).toBeGreaterThan(0);
    expect(await stack.redis.get(k.approvalGrant(t.tenantId, approved.hash))).toBe(approved.id);
    expect(await stack.redis.get(k.approvalRejected(t.tenantId, rejected.hash))).toMatchObject({
      approvalId: rejected.id,
      note: "no",
    });
    expect(await stack.redis.get(k.approvalGrant(t.tenantId, consumed.hash))).toBeNull();
  });

  it("does not re-grant an approval the edge consumed before consumed_at was recorded", async () => {
    const t = await stack.createTenant();
    const client = stack.client(PolicyService, t.adminKey);
    const used = await seed({ tenantId: t.tenantId });
    await client.updateApproval({ approvalId: used.id, status: A.APPROVED });
    const k = keys();
    // What the edge's approval script does on the approved retry: the grant goes, its id
    // stays in the consumed key; the processor has not set consumed_at yet.
    await stack.redis.del(k.approvalGrant(t.tenantId, used.hash));
    await stack.redis.set(k.approvalConsumed(t.tenantId, used.hash), used.id, { px: 60_000 });
    await restoreApprovalKeys(stack.deps, t.tenantId, new Date());
    expect(await stack.redis.get(k.approvalGrant(t.tenantId, used.hash))).toBeNull();
    // Without the marker the same row would be granted again (the test can fail).
    await stack.redis.del(k.approvalConsumed(t.tenantId, used.hash));
    await restoreApprovalKeys(stack.deps, t.tenantId, new Date());
    expect(await stack.redis.get(k.approvalGrant(t.tenantId, used.hash))).toBe(used.id);
  });

  it("marks pending approvals past expires_at EXPIRED and emits APPROVAL_EXPIRED", async () => {
    const live = await seed();
    const gone = await seed({ expiresInMin: -3 });
    expect(await expireApprovals(stack.deps, tenant.tenantId, new Date())).toBeGreaterThanOrEqual(
      1,
    );
    const { rows } = await stack.owner.query<{ id: string; status: string }>(
      "SELECT id::text AS id, status FROM approvals WHERE id = ANY($1::uuid[]) ORDER BY created_at",
      [[live.id, gone.id]],
    );
    expect(Object.fromEntries(rows.map((r) => [r.id, r.status]))).toEqual({
      [live.id]: "PENDING",
      [gone.id]: "EXPIRED",
    });
    const events = await approvalEvents(gone.id, 1);
    expect(events.map((e) => EventType[e.eventType])).toEqual(["APPROVAL_EXPIRED"]);
    expect((await api.getApproval({ approvalId: gone.id })).approval?.status).toBe(A.EXPIRED);
  });
});
