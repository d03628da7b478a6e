/**
 * CreateEnvelope: checks the governance, the budget and the parent, then stores the
 * envelope already AUTHORIZED, in one transaction that stages two events (created →
 * PENDING, then PENDING → AUTHORIZED): the checks are the authorization, so an envelope
 * that fails them is never stored (FailedPrecondition / InvalidArgument) and one that
 * passes never waits in PENDING.
 *
 * Idempotent on execution_id: a retry with the same one answers the stored envelope
 * (and republishes its record) rather than opening a second execution; the same id
 * under another workflow is AlreadyExists. Without an execution_id the envelope's own
 * (new) id is used.
 */
import { eq } from "drizzle-orm";
import { FulcrumError, invalid } from "../../../core/errors/fulcrum-error.js";
import { isUuid } from "../../../core/ids/uuid.js";
import { uuidv7 } from "../../../core/ids/uuidv7.js";
import { budgets, envelopes } from "../../../db/schema/index.js";
import type { Envelope } from "../../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";
import type { CreateEnvelopeRequest } from "../../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import type { TenantPrincipal } from "../auth/principal.js";
import { inTenant, type Tx } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { requireOwnTenant } from "../policies/policy-store.js";
import { stageTransition } from "./envelope-events.js";
import {
  type EnvelopeGovernance,
  governanceFromJson,
  governanceFromProto,
  governanceToJson,
  withinParent,
} from "./envelope-governance.js";
import { publishEnvelopeRecord } from "./envelope-records.js";
import { type EnvelopeRow, frameworkName, toEnvelopeProto } from "./envelope-rows.js";
import { isActive } from "./envelope-transitions.js";

type Deps = Pick<FunctionsDeps, "db" | "redis" | "budgetKeys" | "now">;

async function checkBudget(tx: Tx, budgetId: string): Promise<string> {
  const unknown = invalid(
    "governance.budget_id",
    `budget ${budgetId} does not exist in this tenant; create it first (CostService.CreateBudget) or leave budget_id empty`,
  );
  if (!isUuid(budgetId)) throw unknown;
  const [budget] = await tx
    .select({ id: budgets.id, status: budgets.status })
    .from(budgets)
    .where(eq(budgets.id, budgetId.toLowerCase()));
  if (!budget) throw unknown;
  if (budget.status === "SUSPENDED") {
    throw new FulcrumError(
      "FailedPrecondition",
      `budget ${budget.id} is SUSPENDED; an admin must set it back to OK before executions can draw on it`,
      { field: "governance.budget_id" },
    );
  }
  return budget.id;
}

/** The parent, share-locked so it cannot finish while its child is being opened. */
async function checkParent(tx: Tx, parentId: string): Promise<EnvelopeRow> {
  const unknown = invalid(
    "parent_envelope_id",
    `envelope ${parentId} does not exist in this tenant`,
  );
  if (!isUuid(parentId)) throw unknown;
  const [parent] = await tx
    .select()
    .from(envelopes)
    .where(eq(envelopes.id, parentId.toLowerCase()))
    .for("share");
  if (!parent) throw unknown;
  if (!isActive(parent.status)) {
    throw new FulcrumError(
      "FailedPrecondition",
      `parent envelope ${parent.id} is ${parent.status}; a child can be opened only while its parent is AUTHORIZED or RUNNING`,
      { field: "parent_envelope_id" },
    );
  }
  return parent;
}

async function byExecutionId(tx: Tx, executionId: string): Promise<EnvelopeRow | undefined> {
  const [row] = await tx.select().from(envelopes).where(eq(envelopes.executionId, executionId));
  return row;
}

function sameExecution(row: EnvelopeRow, req: CreateEnvelopeRequest): EnvelopeRow {
  if (row.workflowId !== req.workflowId) {
    throw new FulcrumError(
      "Conflict",
      `execution_id ${row.executionId} already names envelope ${row.id} of workflow ${row.workflowId}; use a new execution_id`,
      { field: "execution_id" },
    );
  }
  return row;
}

export async function createEnvelope(
  deps: Deps,
  caller: TenantPrincipal,
  req: CreateEnvelopeRequest,
): Promise<Envelope> {
  requireOwnTenant(caller.tenantId, req.tenantId, "tenant_id");
  const requested = governanceFromProto(req.governance, req.budgetId);
  const row = await inTenant(deps.db, caller.tenantId, async (tx) => {
    if (req.executionId) {
      const existing = await byExecutionId(tx, req.executionId);
      if (existing) return sameExecution(existing, req);
    }
    let governance: EnvelopeGovernance = requested;
    if (governance.budgetId) governance.budgetId = await checkBudget(tx, governance.budgetId);
    let parentId: string | null = null;
    if (req.parentEnvelopeId) {
      const parent = await checkParent(tx, req.parentEnvelopeId);
      governance = withinParent(governance, governanceFromJson(parent.governance), parent.id);
      parentId = parent.id;
    }
    const id = uuidv7();
    const [inserted] = await tx
      .insert(envelopes)
      .values({
        id,
        tenantId: caller.tenantId,
        workflowId: req.workflowId,
        executionId: req.executionId || id,
        budgetId: governance.budgetId ?? null,
        parentEnvelopeId: parentId,
        framework: frameworkName(req.framework),
        status: "AUTHORIZED",
        governance: governanceToJson(governance),
        metadata: { ...req.metadata },
        traceContext: req.traceContext
          ? {
              trace_id: req.traceContext.traceId,
              span_id: req.traceContext.spanId,
              trace_flags: req.traceContext.traceFlags,
              trace_state: req.traceContext.traceState,
            }
          : {},
      })
      .onConflictDoNothing({ target: [envelopes.tenantId, envelopes.executionId] })
      .returning();
    if (!inserted) {
      // A concurrent create with the same execution_id committed first: answer it.
      const existing = await byExecutionId(tx, req.executionId);
      if (!existing) throw new FulcrumError("Conflict", "execution_id is being created; retry");
      return sameExecution(existing, req);
    }
    const at = inserted.createdAt;
    const base = { reason: "", keyId: caller.keyId, at };
    stageTransition(inserted, { ...base, from: null, to: "PENDING" });
    stageTransition(inserted, { ...base, from: "PENDING", to: "AUTHORIZED" });
    return inserted;
  });
  await publishEnvelopeRecord(deps, caller.tenantId, row.id);
  return toEnvelopeProto(row, deps.now());
}
