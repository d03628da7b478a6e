import type { Client } from "@connectrpc/connect";
import type { NatsConnection } from "@nats-io/nats-core";
import { connect } from "@nats-io/transport-node";
import { BudgetLedger, type CounterState } from "../../core/budget/ledger.js";
import type { BudgetLimits } from "../../core/budget/limits.js";
import { periodWindow } from "../../core/budget/periods.js";
import { CostService } from "../../proto/gen/fulcrum/cost/v1/cost_service_pb.js";
import type { Event } from "../../proto/gen/fulcrum/eventstore/v1/event_pb.js";
import { type FunctionsStack, startFunctionsStack } from "./functions-stack.js";
import { tenantEvents } from "./jetstream-events.js";
import { startTestNats, type TestNats } from "./nats-server.js";

type Tenant = Awaited<ReturnType<FunctionsStack["createTenant"]>>;

export interface UsageBudgetInit {
  workflowId?: string;
  envelopeId?: string;
  period?: string;
  maxTokens?: number;
  maxCostUsd?: string;
  maxToolCalls?: number;
  tenantId?: string;
}

/**
 * RecordUsage tests' setup (record-usage.test.ts, record-usage-budgets.test.ts): the
 * functions stack on a NATS of the test's own, one tenant (and another, for isolation),
 * the budget ledger as the edge uses it, and budgets and envelopes inserted as rows
 * (their services are tested elsewhere).
 */
export interface UsageKit {
  nats: TestNats;
  nc: NatsConnection;
  stack: FunctionsStack;
  ledger: BudgetLedger;
  tenant: Tenant;
  other: Tenant;
  api: Client<typeof CostService>;
  /** A budget row; returns its id and its current counter key. */
  budget(init?: UsageBudgetInit): Promise<{ id: string; key: string }>;
  counterKey(budgetId: string, period: "MONTHLY" | "HOURLY", nowMs?: number): string;
  /** A RUNNING envelope row (workflow `wf-usage`), under `parentId` when given. */
  envelope(parentId?: string, tenantId?: string): Promise<string>;
  costEventCount(tenantId?: string): Promise<number>;
  budgetRow(id: string): Promise<BudgetRow | undefined>;
  /** The counter's state in Redis, as the ledger reads it. */
  used(key: string): Promise<CounterState>;
  /** A reservation of `tokens` (and `cost` micros) on `keys`; returns its id. */
  reserve(keys: string[], tokens: number, cost?: number): Promise<string>;
  /**
   * A reservation as the edge takes it (edge budget-plan.ts estimateOf: one LLM call
   * before an LLM call, one tool call per tool before a tool call); undefined when the
   * ledger refused it.
   */
  reserveCalls(
    counters: { key: string; limits?: BudgetLimits }[],
    calls: { llmCalls?: number; toolCalls?: number },
  ): Promise<string | undefined>;
  /** The budget's BUDGET_* events on the stream (everything stored within `ms`). */
  budgetEventsOf(budgetId: string, ms?: number): Promise<Event[]>;
  /** Deletes every key of the stack's Redis namespace: a flushed Redis, for this stack. */
  flushNamespace(): Promise<number>;
  stop(): Promise<void>;
}

export interface BudgetRow {
  current_tokens: string;
  current_spend_usd: string;
  current_llm_calls: string;
  current_tool_calls: string;
  thresholds: { percent: number; notified: boolean }[];
  status: string;
}

export async function startUsageKit(): Promise<UsageKit> {
  const nats = await startTestNats();
  const stack = await startFunctionsStack(undefined, { natsUrl: nats.url });
  const tenant = await stack.createTenant();
  const other = await stack.createTenant();
  const api = stack.client(CostService, tenant.adminKey);
  const ledger = new BudgetLedger({ redis: stack.redis, keys: stack.deps.budgetKeys });
  const nc = await connect({ servers: nats.url });

  const counterKey: UsageKit["counterKey"] = (budgetId, period, nowMs = Date.now()) => {
    const { startMs } = periodWindow(period, {}, nowMs);
    return stack.deps.budgetKeys.counter(tenant.tenantId, budgetId, startMs);
  };

  return {
    nats,
    nc,
    stack,
    ledger,
    tenant,
    other,
    api,
    async budget(init = {}) {
      const tenantId = init.tenantId ?? tenant.tenantId;
      const { rows } = await stack.owner.query<{ id: string; created: Date }>(
        `INSERT INTO budgets (tenant_id, name, period, max_tokens, max_cost_usd, workflow_id,
           envelope_id, max_tool_calls)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id::text AS id, created_at AS created`,
        [
          tenantId,
          `b-${Math.random().toString(36).slice(2)}`,
          init.period ?? "MONTHLY",
          init.maxTokens ?? 1_000_000,
          init.maxCostUsd ?? null,
          init.workflowId ?? null,
          init.envelopeId ?? null,
          init.maxToolCalls ?? null,
        ],
      );
      const row = rows[0];
      if (!row) throw new Error("no budget row");
      return { id: row.id, key: counterKey(row.id, (init.period ?? "MONTHLY") as "MONTHLY") };
    },
    counterKey,
    async envelope(parentId, tenantId = tenant.tenantId) {
      const { rows } = await stack.owner.query<{ id: string }>(
        `INSERT INTO envelopes (tenant_id, workflow_id, execution_id, status, parent_envelope_id)
         VALUES ($1, 'wf-usage', $2, 'RUNNING', $3) RETURNING id::text AS id`,
        [tenantId, `x-${Math.random().toString(36).slice(2)}`, parentId ?? null],
      );
      return rows[0]?.id as string;
    },
    async costEventCount(tenantId = tenant.tenantId) {
      const { rows } = await stack.owner.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM cost_events WHERE tenant_id = $1",
        [tenantId],
      );
      return rows[0]?.n ?? 0;
    },
    async budgetRow(id) {
      const { rows } = await stack.owner.query<BudgetRow>("SELECT * FROM budgets WHERE id = $1", [
        id,
      ]);
      return rows[0];
    },
    async used(key) {
      const [state] = await ledger.readCounters([key]);
      if (!state) throw new Error("no counter state");
      return state;
    },
    async reserve(keys, tokens, cost = 0) {
      const result = await ledger.reserve({
        tenantId: tenant.tenantId,
        counters: keys.map((key) => ({ key, limits: { tokens: 1_000_000 }, suspended: false })),
        estimate: { tokens, costMicros: cost, llmCalls: 1, toolCalls: 0 },
        ttlMs: 60_000,
      });
      if (!result.ok || !result.reservationId) throw new Error("reservation refused");
      return result.reservationId;
    },
    async reserveCalls(counters, calls) {
      const result = await ledger.reserve({
        tenantId: tenant.tenantId,
        counters: counters.map((c) => ({ key: c.key, limits: c.limits ?? {}, suspended: false })),
        estimate: {
          tokens: 100,
          costMicros: 1000,
          llmCalls: calls.llmCalls ?? 0,
          toolCalls: calls.toolCalls ?? 0,
        },
        ttlMs: 60_000,
      });
      return result.ok ? result.reservationId : undefined;
    },
    budgetEventsOf(budgetId, ms = 1500) {
      return tenantEvents(
        nc,
        tenant.tenantId,
        (e) => e.details.case === "budget" && e.details.value.budgetId === budgetId,
        () => false,
        ms,
      );
    },
    async flushNamespace() {
      let cursor = "0";
      let deleted = 0;
      do {
        const [next, keys] = await stack.redis.scan(cursor, {
          match: `${stack.config.redisKeyNamespace}:*`,
          count: 500,
        });
        cursor = String(next);
        if (keys.length > 0) deleted += await stack.redis.del(...keys);
      } while (cursor !== "0");
      return deleted;
    },
    async stop() {
      await nc.close();
      await stack.stop();
      await nats.stop();
    },
  };
}
