/**
 * UpdateEnvelopeStatus: one transition of the lifecycle (envelope-transitions.ts) under
 * the envelope's row lock, its event staged on the same transaction, and the edge's
 * record rewritten after the commit.
 *
 * - A transition the table does not allow is FailedPrecondition naming the allowed ones.
 * - Asking for the status the envelope already has is idempotent: the envelope is
 *   answered unchanged, no event is emitted, and its record is republished. An SDK that
 *   lost the answer to "complete" retries it; that retry must neither fail nor count a
 *   second completion, and it repairs the edge's copy if Redis failed the first time.
 * - The first RUNNING sets started_at and deadline_at (started_at + governance timeout,
 *   or an ancestor's earlier deadline); a resume (PAUSED → RUNNING) keeps both. A final
 *   status sets completed_at and ends every open descendant (envelope-cascade.ts); the
 *   records of the envelope and its whole tree are rewritten after the commit (a retry
 *   of the same final status rewrites them again).
 * - updated_at strictly increases with every transition (at least 1 ms past the previous
 *   value), so the record's `updatedAtMs` orders the edge's copies (envelope-records.ts).
 */
import { eq, sql } from "drizzle-orm";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { envelopes } from "../../../db/schema/index.js";
import {
  type Envelope,
  EnvelopeStatus,
} from "../../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";
import type { UpdateEnvelopeStatusRequest } from "../../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import type { TenantPrincipal } from "../auth/principal.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { ancestorDeadline, endDescendants } from "./envelope-cascade.js";
import { stageTransition } from "./envelope-events.js";
import { governanceFromJson } from "./envelope-governance.js";
import { publishEnvelopeRecord, publishEnvelopeTree } from "./envelope-records.js";
import { loadEnvelope, toEnvelopeProto } from "./envelope-rows.js";
import {
  allowedNext,
  canTransition,
  type EnvelopeStatusName,
  isTerminal,
} from "./envelope-transitions.js";

type Deps = Pick<FunctionsDeps, "db" | "redis" | "budgetKeys" | "now">;

function statusName(status: EnvelopeStatus, field: string): EnvelopeStatusName {
  const name = EnvelopeStatus[status] as EnvelopeStatusName | undefined;
  if (!name || status === EnvelopeStatus.UNSPECIFIED) {
    throw new FulcrumError("Invalid", `${field} must name a status`, { field });
  }
  return name;
}

function refused(id: string, from: EnvelopeStatusName, to: EnvelopeStatusName): FulcrumError {
  const next = allowedNext(from);
  const allowed =
    next.length === 0
      ? `${from} is final: the envelope cannot change any more (open a new envelope)`
      : `from ${from} it may move to ${next.join(", ")}`;
  return new FulcrumError(
    "FailedPrecondition",
    `envelope ${id} cannot move from ${from} to ${to}; ${allowed}`,
    { field: "status" },
  );
}

export async function updateEnvelopeStatus(
  deps: Deps,
  caller: TenantPrincipal,
  req: UpdateEnvelopeStatusRequest,
): Promise<Envelope> {
  const to = statusName(req.status, "status");
  const row = await inTenant(deps.db, caller.tenantId, async (tx) => {
    const current = await loadEnvelope(tx, req.envelopeId, { lock: true });
    const from = current.status;
    if (from === to) return current;
    if (!canTransition(from, to)) throw refused(current.id, from, to);

    // One instant for every column (µs kept as text), past the previous updated_at.
    const { rows } = await tx.execute<{ at: string }>(sql`
      SELECT greatest(clock_timestamp(), updated_at + interval '1 millisecond')::text AS at
        FROM ${envelopes} WHERE id = ${current.id}`);
    const at = rows[0]?.at;
    if (!at) throw new FulcrumError("Internal", `envelope ${current.id} vanished`);
    const now = sql`${at}::timestamptz`;
    const firstStart = to === "RUNNING" && current.startedAt === null;
    const timeoutMs = governanceFromJson(current.governance).timeoutMs;
    const own =
      timeoutMs === undefined
        ? sql`null::timestamptz`
        : sql`${now} + ${timeoutMs} * interval '1 millisecond'`;
    // least() skips nulls: no timeout and no ancestor deadline leaves none.
    const inherited = firstStart ? await ancestorDeadline(tx, current.parentEnvelopeId) : null;
    const [updated] = await tx
      .update(envelopes)
      .set({
        status: to,
        statusReason: req.reason || null,
        updatedAt: now,
        ...(firstStart
          ? {
              startedAt: now,
              deadlineAt: sql`least(${own}, ${inherited}::timestamptz)`,
            }
          : {}),
        ...(isTerminal(to) ? { completedAt: now } : {}),
      })
      .where(eq(envelopes.id, current.id))
      .returning();
    if (!updated) throw new FulcrumError("Internal", `envelope ${current.id} vanished`);
    stageTransition(updated, {
      from,
      to,
      reason: req.reason,
      keyId: caller.keyId,
      at: updated.updatedAt,
    });
    if (isTerminal(to)) await endDescendants(tx, { root: updated, keyId: caller.keyId, at });
    return updated;
  });
  if (isTerminal(row.status)) await publishEnvelopeTree(deps, caller.tenantId, row.id);
  else await publishEnvelopeRecord(deps, caller.tenantId, row.id);
  return toEnvelopeProto(row, deps.now());
}
