import type { Redis } from "@upstash/redis";
import { withDeadline } from "../../../core/async/deadline.js";
import type { BudgetKeys } from "../../../core/budget/budget-keys.js";
import { uuidv7 } from "../../../core/ids/uuidv7.js";

/**
 * One atomic step for a REQUIRE_APPROVAL decision, keyed by the call's arguments hash:
 * a grant (UpdateApproval APPROVED) is consumed → the retry is allowed once; a
 * rejection marker → denied with the reviewer's note; a pending approval → the same
 * approval id again; else a new pending approval (SET NX PX ttl, checked in the same
 * script so two racing calls create one).
 *
 * A consumed grant leaves its approval id in the consumed key (2 h: longer than any grant
 * reconciliation would restore), so a reconciliation that runs before the event
 * processor records consumed_at does not grant the same approval twice.
 *
 * KEYS: grant, rejected, pending, consumed. ARGV: new approval id, ttl ms, consumed ms.
 */
const APPROVAL_SCRIPT = `
local granted = redis.call('GET', KEYS[1])
if granted then
  redis.call('DEL', KEYS[1])
  redis.call('SET', KEYS[4], granted, 'PX', ARGV[3])
  return {'granted', granted}
end
local rejected = redis.call('GET', KEYS[2])
if rejected then return {'rejected', rejected} end
local pending = redis.call('GET', KEYS[3])
if pending then return {'pending', pending} end
redis.call('SET', KEYS[3], ARGV[1], 'PX', ARGV[2])
return {'created', ARGV[1]}
`;

const CONSUMED_MARKER_MS = 2 * 3_600_000;

export type ApprovalStep =
  | { kind: "granted"; approvalId: string }
  | { kind: "rejected"; approvalId: string; reviewer: string; note: string }
  | { kind: "pending"; approvalId: string }
  | { kind: "created"; approvalId: string; expiresAtMs: number };

export interface ApprovalGateOptions {
  redis: Redis;
  keys: BudgetKeys;
  /** How long a pending approval waits for a reviewer (APPROVAL_TTL_SECONDS). */
  ttlMs: number;
  timeoutMs?: number;
  now?: () => number;
}

export class ApprovalGate {
  private readonly script;
  private readonly timeoutMs: number;
  private readonly now: () => number;

  constructor(private readonly options: ApprovalGateOptions) {
    this.script = options.redis.createScript<unknown>(APPROVAL_SCRIPT);
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.now = options.now ?? Date.now;
  }

  /** The step for the call hashed `argsHash`; throws when Redis fails. */
  async step(tenantId: string, argsHash: string): Promise<ApprovalStep> {
    const { keys, ttlMs } = this.options;
    const nowMs = this.now();
    const newId = uuidv7(nowMs);
    const answer = await withDeadline(
      this.script.exec(
        [
          keys.approvalGrant(tenantId, argsHash),
          keys.approvalRejected(tenantId, argsHash),
          keys.approvalPending(tenantId, argsHash),
          keys.approvalConsumed(tenantId, argsHash),
        ],
        [newId, String(ttlMs), String(CONSUMED_MARKER_MS)],
      ),
      this.timeoutMs,
      "Redis did not answer",
    );
    if (!Array.isArray(answer) || answer.length !== 2) {
      throw new Error(`the approval script answered ${JSON.stringify(answer)}`);
    }
    const [kind, value] = answer as [unknown, unknown];
    switch (kind) {
      case "granted":
        return { kind, approvalId: String(value) };
      case "pending":
        return { kind, approvalId: String(value) };
      case "created":
        return { kind, approvalId: String(value), expiresAtMs: nowMs + ttlMs };
      case "rejected":
        return { kind, ...parseRejection(value) };
      default:
        throw new Error(`the approval script answered ${JSON.stringify(answer)}`);
    }
  }
}

/** The rejection marker: JSON {approvalId, reviewer, note} (the client may have parsed it). */
function parseRejection(value: unknown): { approvalId: string; reviewer: string; note: string } {
  let parsed: unknown = value;
  if (typeof value === "string") {
    try {
      parsed = JSON.parse(value);
    } catch {
      parsed = {};
    }
  }
  const o = (typeof parsed === "object" && parsed !== null ? parsed : {}) as Record<
    string,
    unknown
  >;
  const text = (v: unknown) => (typeof v === "string" ? v : "");
  return { approvalId: text(o.approvalId), reviewer: text(o.reviewer), note: text(o.note) };
}
