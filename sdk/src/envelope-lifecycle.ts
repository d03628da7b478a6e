import type { MessageInitShape } from "@bufbuild/protobuf";
import {
  EnvelopeStatus as EnvelopeStatusEnum,
  type GovernanceSchema,
} from "../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";
import { FulcrumError } from "./errors.js";
import type { Management } from "./management.js";

/**
 * The server side of an envelope (EnvelopeService on the management API): create it,
 * move it through its lifecycle. Every call is safe to retry: CreateEnvelope is
 * idempotent on the execution id, and a transition whose earlier attempt landed is
 * recognised by reading the envelope back.
 */

/** An envelope's status: the server's lifecycle (PENDING until a managed envelope starts). */
export type EnvelopeStatus =
  | "PENDING"
  | "AUTHORIZED"
  | "RUNNING"
  | "PAUSED"
  | "COMPLETED"
  | "FAILED"
  | "TERMINATED"
  | "BUDGET_EXCEEDED"
  | "POLICY_VIOLATION"
  | "TIMEOUT";

const FINAL: ReadonlySet<EnvelopeStatus> = new Set([
  "COMPLETED",
  "FAILED",
  "TERMINATED",
  "BUDGET_EXCEEDED",
  "POLICY_VIOLATION",
  "TIMEOUT",
]);

export function isFinal(status: EnvelopeStatus): boolean {
  return FINAL.has(status);
}

/** The limits one execution runs under (EnvelopeService governance). Unset: no cap. */
export interface EnvelopeGovernance {
  /** Token cap of this execution (and, for a child, at most its parent's). */
  tokenBudget?: number;
  /** Cost cap of this execution in USD. */
  costLimitUsd?: number;
  /** The execution must end within this long after it starts running (else TIMEOUT). */
  timeoutMs?: number;
  /** Models the execution may call; empty: any the policies allow. */
  allowedModels?: string[];
  /** Tool names or globs the execution may call; empty: any the policies allow. */
  allowedTools?: string[];
  maxLlmCalls?: number;
  maxToolCalls?: number;
  /** E.g. `"gdpr"`; passed to policies as context. */
  complianceTags?: string[];
}

export interface CreateSpec {
  workflowId: string;
  executionId: string;
  budgetId: string;
  governance: EnvelopeGovernance;
  parentEnvelopeId: string;
  metadata: Record<string, string>;
}

function statusName(value: EnvelopeStatusEnum): EnvelopeStatus {
  const name = EnvelopeStatusEnum[value] as EnvelopeStatus | undefined;
  if (!name || name === ("UNSPECIFIED" as string)) {
    throw new FulcrumError("Internal", `the server answered an unknown envelope status ${value}`);
  }
  return name;
}

function whole(name: string, value: number | undefined): number {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 0) {
    throw new FulcrumError(
      "InvalidArgument",
      `governance.${name} must be a whole number ≥ 0, not ${value}`,
    );
  }
  return value;
}

export function governanceInit(g: EnvelopeGovernance): MessageInitShape<typeof GovernanceSchema> {
  const timeoutMs = whole("timeoutMs", g.timeoutMs);
  if (g.costLimitUsd !== undefined && !(Number.isFinite(g.costLimitUsd) && g.costLimitUsd >= 0)) {
    throw new FulcrumError("InvalidArgument", "governance.costLimitUsd must be a USD amount ≥ 0");
  }
  return {
    tokenBudget: BigInt(whole("tokenBudget", g.tokenBudget)),
    costLimitUsd: g.costLimitUsd ?? 0,
    ...(g.timeoutMs !== undefined
      ? {
          timeout: {
            seconds: BigInt(Math.floor(timeoutMs / 1000)),
            nanos: (timeoutMs % 1000) * 1_000_000,
          },
        }
      : {}),
    allowedModels: g.allowedModels ?? [],
    allowedTools: g.allowedTools ?? [],
    maxLlmCalls: whole("maxLlmCalls", g.maxLlmCalls),
    maxToolCalls: whole("maxToolCalls", g.maxToolCalls),
    complianceTags: g.complianceTags ?? [],
  };
}

/** CreateEnvelope (authorized by the server in the same call): the envelope id and status. */
export async function createEnvelope(
  management: Management,
  spec: CreateSpec,
  signal?: AbortSignal,
): Promise<{ envelopeId: string; status: EnvelopeStatus }> {
  const governance = governanceInit(spec.governance);
  const response = await management.call(
    (options) =>
      management.envelopes.createEnvelope(
        {
          workflowId: spec.workflowId,
          executionId: spec.executionId,
          budgetId: spec.budgetId,
          governance,
          parentEnvelopeId: spec.parentEnvelopeId,
          metadata: spec.metadata,
        },
        options,
      ),
    { signal },
  );
  const envelope = response.envelope;
  if (!envelope?.envelopeId) {
    throw new FulcrumError("Internal", "CreateEnvelope answered without an envelope");
  }
  return { envelopeId: envelope.envelopeId, status: statusName(envelope.status) };
}

/**
 * UpdateEnvelopeStatus to `to`; resolves with the status the envelope has afterwards.
 * A refused transition (FailedPrecondition) is read back: already `to` (a retried
 * request whose first attempt landed) or already final (an operator terminated it, it
 * timed out) resolves with that status; anything else rethrows.
 */
export async function transition(
  management: Management,
  envelopeId: string,
  to: EnvelopeStatus,
  reason: string,
): Promise<EnvelopeStatus> {
  try {
    const response = await management.call((options) =>
      management.envelopes.updateEnvelopeStatus(
        { envelopeId, status: EnvelopeStatusEnum[to], reason: reason.slice(0, 4096) },
        options,
      ),
    );
    return response.envelope ? statusName(response.envelope.status) : to;
  } catch (reason) {
    const error = FulcrumError.from(reason);
    if (error.code !== "FailedPrecondition") throw error;
    const current = await management.call((options) =>
      management.envelopes.getEnvelope({ envelopeId }, options),
    );
    const status = current.envelope ? statusName(current.envelope.status) : undefined;
    if (status && (status === to || isFinal(status))) return status;
    throw error;
  }
}
