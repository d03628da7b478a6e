import { type Timestamp, timestampMs } from "@bufbuild/protobuf/wkt";
import { type Approval, ApprovalStatus } from "../../proto/gen/fulcrum/policy/v1/approval_pb.js";
import type { Decision } from "./decision-types.js";
import { FulcrumError } from "./errors.js";
import { canceled, type Management, sleep } from "./management.js";

export interface WaitForApprovalOptions {
  /** Give up after this long and resolve with status `"TIMEOUT"`. Default 15 minutes. */
  timeoutMs?: number;
  /** Time between two GetApproval calls. Default 2000 ms. */
  pollMs?: number;
  /**
   * How long NotFound means "not recorded yet" (the edge publishes the request, the
   * event processor writes the approval a moment later). Past it, NotFound throws.
   * Default 30 000 ms.
   */
  notFoundGraceMs?: number;
  /** Cancels the wait: it rejects with FulcrumError("Canceled"). */
  signal?: AbortSignal;
}

export interface ApprovalOutcome {
  approvalId: string;
  /** How the wait ended: a reviewer's verdict, the approval's expiry, or our own timeout. */
  status: "APPROVED" | "REJECTED" | "EXPIRED" | "CANCELLED" | "TIMEOUT";
  /** Who reviewed it (`""` unless APPROVED or REJECTED). */
  reviewer: string;
  /** The reviewer's note. */
  note: string;
  reviewedAt: Date | undefined;
  expiresAt: Date | undefined;
  /** The decision that required the approval. */
  decisionId: string;
}

/** One reading of an approval (client.getApproval). */
export interface ApprovalState {
  approvalId: string;
  /**
   * PENDING until a reviewer decides or it expires. NOT_FOUND: no approval with this id
   * in the API key's tenant — right after a REQUIRE_APPROVAL decision that is expected
   * for a moment (the event processor records the request ~0.1–1 s later); the server
   * answers the same for another tenant's id, so it cannot tell the two apart either.
   */
  status: "PENDING" | "APPROVED" | "REJECTED" | "EXPIRED" | "CANCELLED" | "NOT_FOUND";
  reviewer: string;
  note: string;
  reviewedAt: Date | undefined;
  expiresAt: Date | undefined;
  decisionId: string;
}

/** A decision from guardWithApproval / evaluateWithApproval. */
export type ApprovedDecision = Decision & {
  /** How the wait for approval ended; undefined when no approval was required. */
  approval: ApprovalOutcome | undefined;
};

const FINAL: Partial<Record<ApprovalStatus, "APPROVED" | "REJECTED" | "EXPIRED" | "CANCELLED">> = {
  [ApprovalStatus.APPROVED]: "APPROVED",
  [ApprovalStatus.REJECTED]: "REJECTED",
  [ApprovalStatus.EXPIRED]: "EXPIRED",
  [ApprovalStatus.CANCELLED]: "CANCELLED",
};

function date(ts: Timestamp | undefined): Date | undefined {
  return ts ? new Date(timestampMs(ts)) : undefined;
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new FulcrumError("InvalidArgument", `${name} must be a positive number of ms`);
  }
  return value;
}

function requireId(approvalId: string): void {
  if (!approvalId) {
    throw new FulcrumError(
      "InvalidArgument",
      "approvalId is required: pass decision.approvalId of a REQUIRE_APPROVAL decision",
    );
  }
}

function details(approval: Approval | undefined) {
  return {
    reviewer: approval?.reviewer ?? "",
    note: approval?.reviewNote ?? "",
    reviewedAt: date(approval?.reviewedAt),
    expiresAt: date(approval?.expiresAt),
    decisionId: approval?.decisionId ?? "",
  };
}

/**
 * One PolicyService.GetApproval (transient failures retried like every management call).
 * NotFound resolves with status NOT_FOUND rather than throwing: a poller asks before the
 * approval is recorded as a matter of course (see ApprovalState). Anything else throws.
 */
export async function getApproval(
  management: Management,
  approvalId: string,
  options: { signal?: AbortSignal } = {},
): Promise<ApprovalState> {
  requireId(approvalId);
  try {
    const { approval } = await management.call(
      (call) => management.policies.getApproval({ approvalId }, call),
      options,
    );
    return {
      approvalId,
      status: FINAL[approval?.status ?? ApprovalStatus.PENDING] ?? "PENDING",
      ...details(approval),
    };
  } catch (reason) {
    const error = FulcrumError.from(reason);
    if (error.code !== "NotFound" || options.signal?.aborted) throw error;
    return { approvalId, status: "NOT_FOUND", ...details(undefined) };
  }
}

/**
 * Polls PolicyService.GetApproval until the approval is decided or expires, or
 * `timeoutMs` passes. Transient failures and an early NotFound are polled through;
 * anything else (a wrong key, a foreign approval id after the grace) throws.
 */
export async function waitForApproval(
  management: Management,
  approvalId: string,
  options: WaitForApprovalOptions = {},
): Promise<ApprovalOutcome> {
  requireId(approvalId);
  const timeoutMs = positive("timeoutMs", options.timeoutMs, 15 * 60_000);
  // setTimeout fires at once past 2^31 − 1 ms: a longer poll would spin.
  const pollMs = Math.min(positive("pollMs", options.pollMs, 2000), 60_000);
  const graceMs = positive("notFoundGraceMs", options.notFoundGraceMs, 30_000);
  const { signal } = options;
  const started = Date.now();
  const deadline = started + timeoutMs;
  let last: ApprovalOutcome = outcome(approvalId, "TIMEOUT");
  for (;;) {
    if (signal?.aborted) throw canceled(signal);
    const left = deadline - Date.now();
    if (left <= 0) return { ...last, status: "TIMEOUT" };
    try {
      const { approval } = await management.policies.getApproval(
        { approvalId },
        management.callOptions({
          signal,
          timeoutMs: Math.min(management.settings.timeoutMs, left),
        }),
      );
      const status = approval ? FINAL[approval.status] : undefined;
      last = { approvalId, status: status ?? "TIMEOUT", ...details(approval) };
      if (status) return last;
    } catch (reason) {
      const error = FulcrumError.from(reason);
      if (signal?.aborted) throw canceled(signal);
      if (error.code === "NotFound") {
        if (Date.now() - started >= graceMs) {
          throw new FulcrumError(
            "NotFound",
            `approval ${approvalId} was not found after ${Math.round(graceMs / 1000)} s: it is not ` +
              "an approval of this API key's tenant, or the event processor has not recorded it " +
              `(is it running?): ${error.message}`,
            { cause: error },
          );
        }
      } else if (!error.retryable) {
        throw error;
      }
    }
    const wait = Math.min(pollMs, deadline - Date.now());
    if (wait > 0) await sleep(wait, signal);
  }
}

function outcome(approvalId: string, status: ApprovalOutcome["status"]): ApprovalOutcome {
  return { approvalId, status, ...details(undefined) };
}

export interface WithApprovalOptions {
  /** How long and how often to poll (see waitForApproval). */
  approval?: WaitForApprovalOptions;
  /** Called once when the first decision is REQUIRE_APPROVAL, before waiting. */
  onApprovalRequired?: (decision: Decision) => void;
}

/**
 * REQUIRE_APPROVAL → wait for the reviewer → ask again with the very same call (the
 * edge allows an approved call once: same action, tools, arguments and input). Returns
 * the retry's decision when approved, else the first decision; `approval` says how the
 * wait ended. A decision that needs no approval (or names none) is returned as is.
 */
export async function withApproval(
  decide: () => Promise<Decision>,
  wait: (approvalId: string, options?: WaitForApprovalOptions) => Promise<ApprovalOutcome>,
  options: WithApprovalOptions = {},
): Promise<ApprovedDecision> {
  const first = await decide();
  if (first.decision !== "REQUIRE_APPROVAL" || !first.approvalId) {
    return Object.assign(first, { approval: undefined });
  }
  options.onApprovalRequired?.(first);
  const approval = await wait(first.approvalId, options.approval);
  if (approval.status !== "APPROVED") return Object.assign(first, { approval });
  return Object.assign(await decide(), { approval });
}
