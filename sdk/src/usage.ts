import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { uuidv7 } from "../../core/ids/uuidv7.js";
import type { RecordUsageRequestSchema } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import { type BudgetStatus, budgetStatus } from "./budget.js";
import { AlreadySettledError, FulcrumError } from "./errors.js";
import type { Management } from "./management.js";

/** What one guarded call actually used, reported after the call. */
export interface Usage {
  /** Model id; prices the call when `costUsd` is unset. Default: the decision's `model`. */
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
  /** The call's cost in USD; unset: the server prices the tokens with the tenant's table. */
  costUsd?: number;
  /** LLM calls made; default 1 when tokens are given, else 0. */
  llmCalls?: number;
  toolCalls?: number;
  executionTimeMs?: number;
  /** When the usage happened (within the last 7 days); default now. */
  occurredAt?: Date;
}

/** `client.recordUsage`: usage with what it is charged to. */
export interface RecordUsageInput extends Usage {
  /** The decision's `budget.reservationId`; unset for usage no decision reserved. */
  reservationId?: string;
  envelopeId?: string;
  workflowId?: string;
  /**
   * Usage without a reservation is recorded once per key. Default: a new key per
   * recordUsage call (its own retries are deduplicated, separate calls are not).
   */
  idempotencyKey?: string;
}

export interface SettleOptions {
  /** Deadline of one attempt; default the client's `managementTimeoutMs`. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface SettleResult {
  /** The cost_events row; `""` when `duplicate`. */
  costEventId: string;
  /** What the call cost (priced by the server when not given); undefined when `duplicate`. */
  costUsd: number | undefined;
  /** Every budget the usage was counted against, after counting it. */
  budgets: BudgetStatus[];
  /**
   * An attempt of this same call was recorded but its answer was lost (a retry got
   * AlreadyExists): the usage is counted once, its figures are not known here.
   */
  duplicate: boolean;
}

type RecordUsageInit = MessageInitShape<typeof RecordUsageRequestSchema>;

const MAX_TOKENS = 1_000_000_000;
const MAX_CALLS = 100_000;
const MAX_COST_USD = 100_000;
const MAX_EXECUTION_MS = 7 * 24 * 3600 * 1000;

function count(name: string, value: number | undefined, max: number): number {
  if (value === undefined) return 0;
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new FulcrumError(
      "InvalidArgument",
      `usage.${name} must be a whole number between 0 and ${max}, not ${String(value)}`,
    );
  }
  return value;
}

/** The RecordUsage request for `input`; throws InvalidArgument before any call. */
export function usageRequest(input: RecordUsageInput): RecordUsageInit {
  if (input === null || typeof input !== "object") {
    throw new FulcrumError(
      "InvalidArgument",
      "usage must be an object ({ model, inputTokens, … })",
    );
  }
  const inputTokens = count("inputTokens", input.inputTokens, MAX_TOKENS);
  const outputTokens = count("outputTokens", input.outputTokens, MAX_TOKENS);
  const tokens = inputTokens + outputTokens > 0;
  const llmCalls =
    input.llmCalls === undefined ? (tokens ? 1 : 0) : count("llmCalls", input.llmCalls, MAX_CALLS);
  const toolCalls = count("toolCalls", input.toolCalls, MAX_CALLS);
  const executionMs = count(
    "executionTimeMs",
    input.executionTimeMs === undefined ? undefined : Math.round(input.executionTimeMs),
    MAX_EXECUTION_MS,
  );
  const cost = input.costUsd;
  if (cost !== undefined && (!Number.isFinite(cost) || cost < 0 || cost > MAX_COST_USD)) {
    throw new FulcrumError(
      "InvalidArgument",
      `usage.costUsd must be a number of USD between 0 and ${MAX_COST_USD}, not ${String(cost)}`,
    );
  }
  if (!tokens && cost === undefined && llmCalls + toolCalls === 0 && !input.executionTimeMs) {
    throw new FulcrumError(
      "InvalidArgument",
      "usage is empty: give inputTokens/outputTokens, costUsd, llmCalls, toolCalls or executionTimeMs",
    );
  }
  // The server prices tokens with the model's price; an unnamed model has none.
  if (tokens && cost === undefined && !input.model?.trim()) {
    throw new FulcrumError(
      "InvalidArgument",
      "usage.model is required to price tokens when costUsd is not set (or give costUsd)",
    );
  }
  const reservationId = input.reservationId ?? "";
  return {
    reservationId,
    envelopeId: input.envelopeId ?? "",
    workflowId: input.workflowId ?? "",
    modelId: input.model ?? "",
    inputTokens: BigInt(inputTokens),
    outputTokens: BigInt(outputTokens),
    ...(cost !== undefined ? { costUsd: cost } : {}),
    llmCalls,
    toolCalls,
    ...(input.executionTimeMs !== undefined
      ? {
          executionTime: {
            seconds: BigInt(Math.floor(executionMs / 1000)),
            nanos: (executionMs % 1000) * 1_000_000,
          },
        }
      : {}),
    // A reservation is its own idempotency key (the server dedupes on it); usage
    // without one gets a key so that this call's retries are recorded once.
    idempotencyKey: reservationId ? "" : (input.idempotencyKey ?? uuidv7()),
    ...(input.occurredAt ? { occurredAt: timestampFromMs(input.occurredAt.getTime()) } : {}),
  };
}

/**
 * CostService.RecordUsage, retried on transient failures with the same request (the
 * reservation id or idempotency key makes a retry count nothing twice).
 */
export async function recordUsage(
  management: Management,
  request: RecordUsageInit,
  options: SettleOptions = {},
): Promise<SettleResult> {
  const key = request.reservationId || request.idempotencyKey || "";
  return management.call(async (callOptions, attempt) => {
    try {
      const response = await management.costs.recordUsage(request, callOptions);
      return {
        costEventId: response.costEventId,
        costUsd: response.costUsd,
        budgets: response.budgets.map(budgetStatus),
        duplicate: false,
      };
    } catch (reason) {
      const error = FulcrumError.from(reason);
      if (error.code !== "AlreadyExists") throw error;
      // A retry's AlreadyExists is this call's own earlier attempt, whose answer was lost.
      if (attempt > 1) return { costEventId: "", costUsd: undefined, budgets: [], duplicate: true };
      throw new AlreadySettledError(error.message, {
        reservationId: key,
        local: false,
        cause: error,
      });
    }
  }, options);
}

/**
 * Gives a decision its `settle()` and `settled`: `prepare` validates the usage (throws
 * before anything is sent), `send` records it. A second settle of the same decision is
 * refused here, without a call; a settle that failed for another reason than
 * AlreadyExists may be tried again (the server deduplicates the retry).
 */
export function attachSettle<D extends object>(
  data: D,
  prepare: (usage: Usage) => RecordUsageInit,
  send: (request: RecordUsageInit, options: SettleOptions) => Promise<SettleResult>,
): D & {
  settle(usage: Usage, options?: SettleOptions): Promise<SettleResult>;
  readonly settled: boolean;
} {
  let settled = false;
  const settle = async (usage: Usage, options: SettleOptions = {}): Promise<SettleResult> => {
    const request = prepare(usage);
    const key = request.reservationId || request.idempotencyKey || "";
    if (settled) {
      throw new AlreadySettledError(
        `this decision was already settled${key ? ` (${key})` : ""}: settle each decision once`,
        { reservationId: key, local: true },
      );
    }
    settled = true;
    try {
      return await send(request, options);
    } catch (error) {
      if (!(error instanceof AlreadySettledError)) settled = false;
      throw error;
    }
  };
  return Object.defineProperties(data, {
    settle: { value: settle, enumerable: false },
    settled: { get: () => settled, enumerable: false },
  }) as D & { settle: typeof settle; readonly settled: boolean };
}
