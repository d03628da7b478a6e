/**
 * UpdateEnvelopeStatus: one transition of the lifecycle (envelope-transitions.ts) under
 * the envelope's row lock, written by applyTransition (apply-transition.ts) with its
 * event staged on the same transaction, and the edge's record rewritten after the commit.
 *
 * - A transition the table does not allow is FailedPrecondition naming the allowed ones.
 * - Asking for the status the envelope already has is idempotent: the envelope is
 *   answered unchanged, no event is emitted, and its record is republished. An SDK that
 *   lost the answer to "complete" retries it; that retry must neither fail nor count a
 *   second completion, and it repairs the edge's copy if Redis failed the first time.
 * - An envelope past its deadline is timed out first (reads already report it TIMEOUT,
 *   envelope-deadline.ts): the TIMEOUT is committed and published, and the requested
 *   status is then judged from TIMEOUT — asking for TIMEOUT answers it, anything else is
 *   FailedPrecondition. Otherwise a "complete" arriving after the deadline would turn an
 *   execution every read called TIMEOUT into COMPLETED.
 * - A final status rewrites the records of the envelope and its whole tree after the
 *   commit (a retry of the same final status rewrites them again).
 */
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import {
  type Envelope,
  EnvelopeStatus,
} from "../../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";
import type { UpdateEnvelopeStatusRequest } from "../../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import type { TenantPrincipal } from "../auth/principal.js";
import { inTenant } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import { applyTransition } from "./apply-transition.js";
import { isOverdue, timeoutReason } from "./envelope-deadline.js";
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
  const { row, refusal } = await inTenant(deps.db, caller.tenantId, async (tx) => {
    let current = await loadEnvelope(tx, req.envelopeId, { lock: true });
    let timedOut = false;
    if (isOverdue(current, deps.now())) {
      // No key ended it: the deadline did (the same write as timeOutEnvelopes').
      const reason = timeoutReason(current.deadlineAt);
      current = await applyTransition(tx, current, { to: "TIMEOUT", reason, keyId: "" });
      timedOut = true;
    }
    const from = current.status;
    if (from === to) return { row: current, refusal: undefined };
    if (!canTransition(from, to)) {
      // Throwing here would roll the timeout back: commit it, refuse after publishing.
      if (timedOut) return { row: current, refusal: refused(current.id, from, to) };
      throw refused(current.id, from, to);
    }
    const updated = await applyTransition(tx, current, {
      to,
      reason: req.reason,
      keyId: caller.keyId,
    });
    return { row: updated, refusal: undefined };
  });
  if (isTerminal(row.status)) await publishEnvelopeTree(deps, caller.tenantId, row.id);
  else await publishEnvelopeRecord(deps, caller.tenantId, row.id);
  if (refusal) throw refusal;
  return toEnvelopeProto(row, deps.now());
}
