import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code, ConnectError, createRouterTransport } from "@connectrpc/connect";
import type { BudgetStatusSchema } from "../../proto/gen/fulcrum/cost/v1/budget_pb.js";
import {
  CostService,
  type RecordUsageRequest,
} from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import {
  type EnvelopeSchema,
  EnvelopeStatus,
} from "../../proto/gen/fulcrum/envelope/v1/envelope_pb.js";
import {
  type CreateEnvelopeRequest,
  EnvelopeService,
  type UpdateEnvelopeStatusRequest,
} from "../../proto/gen/fulcrum/envelope/v1/envelope_service_pb.js";
import {
  EventStoreService,
  type PublishEventRequest,
} from "../../proto/gen/fulcrum/eventstore/v1/event_store_service_pb.js";
import type { ApprovalSchema } from "../../proto/gen/fulcrum/policy/v1/approval_pb.js";
import {
  type EvaluatePolicyRequest,
  type EvaluatePolicyResponseSchema,
  PolicyService,
} from "../../proto/gen/fulcrum/policy/v1/policy_service_pb.js";
import { FulcrumClient, type FulcrumClientOptions } from "../../sdk/src/index.js";
import { TEST_API_KEY } from "./sdk-client-stubs.js";

/**
 * Stand-ins for the SDK's management-API unit tests (sdk/src/settle.test.ts,
 * envelope-managed.test.ts, approvals.test.ts): an in-memory edge (EvaluatePolicy →
 * `evaluate`, PublishEvent recorded) and an in-memory management API with a small
 * envelope state machine, RecordUsage, GetApproval and GetBudgetStatus driven by the test. Every call is
 * recorded in `calls` as `"<Method>"` so tests can assert what was (not) sent.
 */

type EvaluateResponse = MessageInitShape<typeof EvaluatePolicyResponseSchema>;
type EnvelopeInit = MessageInitShape<typeof EnvelopeSchema>;
type ApprovalInit = MessageInitShape<typeof ApprovalSchema>;
type BudgetStatusInit = MessageInitShape<typeof BudgetStatusSchema>;

export interface StubBehaviour {
  evaluate?: (req: EvaluatePolicyRequest, n: number) => EvaluateResponse;
  /** Throw to fail the attempt (`attempt` counts RecordUsage calls from 1). */
  recordUsage?: (req: RecordUsageRequest, attempt: number) => void;
  /** Throw to lose the answer of an attempt that was recorded. */
  afterRecord?: (req: RecordUsageRequest, attempt: number) => void;
  /** GetApproval's answer per call (from 1); throw for an error. */
  getApproval?: (n: number) => ApprovalInit;
  /** GetBudgetStatus's answer per call (from 1); throw for an error. */
  getBudgetStatus?: (budgetId: string, n: number) => BudgetStatusInit;
  /** Throw to fail an UpdateEnvelopeStatus attempt *after* it was applied (lost answer). */
  afterTransition?: (req: UpdateEnvelopeStatusRequest, n: number) => void;
  /** Throw to refuse CreateEnvelope. */
  create?: (req: CreateEnvelopeRequest) => void;
}

export function fakeFulcrum(behaviour: StubBehaviour = {}) {
  const calls: string[] = [];
  const evaluations: EvaluatePolicyRequest[] = [];
  const published: PublishEventRequest[] = [];
  const usages: RecordUsageRequest[] = [];
  const creates: CreateEnvelopeRequest[] = [];
  const transitions: UpdateEnvelopeStatusRequest[] = [];
  const envelopes = new Map<string, EnvelopeInit>();
  const recorded = new Set<string>();
  let approvalPolls = 0;
  let budgetReads = 0;

  const edge = createRouterTransport(({ service }) => {
    service(PolicyService, {
      evaluatePolicy(req) {
        calls.push("EvaluatePolicy");
        evaluations.push(req);
        return (
          behaviour.evaluate?.(req, evaluations.length) ?? {
            decisionId: `dec_${evaluations.length}`,
            result: { decision: 1 },
          }
        );
      },
    });
    service(EventStoreService, {
      publishEvent(req) {
        published.push(req);
        return { eventId: req.event?.eventId ?? "" };
      },
    });
  });

  const management = createRouterTransport(({ service }) => {
    service(CostService, {
      recordUsage(req) {
        calls.push("RecordUsage");
        usages.push(req);
        behaviour.recordUsage?.(req, usages.length);
        const key = req.reservationId || req.idempotencyKey;
        if (recorded.has(key)) {
          throw new ConnectError(
            `usage for reservation ${key} was already recorded`,
            Code.AlreadyExists,
          );
        }
        recorded.add(key);
        behaviour.afterRecord?.(req, usages.length);
        return { costEventId: `ce_${recorded.size}`, costUsd: 0.0123, budgets: [] };
      },
      getBudgetStatus(req) {
        calls.push("GetBudgetStatus");
        budgetReads++;
        const status = behaviour.getBudgetStatus?.(req.budgetId, budgetReads) ?? {};
        return { status: { budgetId: req.budgetId, ...status } };
      },
    });
    service(EnvelopeService, {
      createEnvelope(req) {
        calls.push("CreateEnvelope");
        creates.push(req);
        behaviour.create?.(req);
        const existing = [...envelopes.values()].find((e) => e.executionId === req.executionId);
        if (existing) return { envelope: existing };
        const envelope: EnvelopeInit = {
          envelopeId: `env_${envelopes.size + 1}`,
          workflowId: req.workflowId,
          executionId: req.executionId,
          parentEnvelopeId: req.parentEnvelopeId,
          status: EnvelopeStatus.AUTHORIZED,
        };
        envelopes.set(envelope.envelopeId as string, envelope);
        return { envelope };
      },
      getEnvelope(req) {
        calls.push("GetEnvelope");
        const envelope = envelopes.get(req.envelopeId);
        if (!envelope) throw new ConnectError("no such envelope", Code.NotFound);
        return { envelope };
      },
      updateEnvelopeStatus(req) {
        calls.push(`UpdateEnvelopeStatus:${EnvelopeStatus[req.status]}`);
        transitions.push(req);
        const envelope = envelopes.get(req.envelopeId);
        if (!envelope) throw new ConnectError("no such envelope", Code.NotFound);
        const from = envelope.status as EnvelopeStatus;
        const ok =
          (from === EnvelopeStatus.AUTHORIZED && req.status === EnvelopeStatus.RUNNING) ||
          (from === EnvelopeStatus.RUNNING && req.status >= EnvelopeStatus.PAUSED);
        if (!ok) {
          throw new ConnectError(
            `cannot move ${EnvelopeStatus[from]} to ${EnvelopeStatus[req.status]}`,
            Code.FailedPrecondition,
          );
        }
        envelope.status = req.status;
        envelope.statusReason = req.reason;
        behaviour.afterTransition?.(req, transitions.length);
        return { envelope };
      },
    });
    service(PolicyService, {
      getApproval(req) {
        calls.push("GetApproval");
        approvalPolls++;
        const approval = behaviour.getApproval?.(approvalPolls) ?? { status: 1 };
        return { approval: { approvalId: req.approvalId, ...approval } };
      },
    });
  });

  const client = (options: Partial<FulcrumClientOptions> = {}) =>
    new FulcrumClient({
      baseUrl: "http://unused",
      apiKey: TEST_API_KEY,
      transport: edge,
      managementTransport: management,
      ...options,
    });

  return { client, calls, evaluations, published, usages, creates, transitions, envelopes, edge };
}
