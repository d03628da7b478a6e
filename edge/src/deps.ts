import { Redis } from "@upstash/redis";
import { withDeadline } from "../../core/async/deadline.js";
import { budgetKeysIn } from "../../core/budget/budget-keys.js";
import { BudgetLedger } from "../../core/budget/ledger.js";
import { policyKeysIn } from "../../core/distribution/policy-keys.js";
import { createLogger, type Logger } from "../../core/logging/logger.js";
import type { Metrics } from "../../core/observability/metrics.js";
import { RateLimiters } from "../../core/rate-limit/rate-limiter.js";
import { ApprovalGate } from "./approvals/approval-gate.js";
import { AuditShards } from "./audit/audit-shards.js";
import { BufferedDecisionSink } from "./audit/buffered-decision-sink.js";
import { PublishDedupe } from "./audit/publish-dedupe.js";
import { KeyAuthenticator } from "./auth/key-authenticator.js";
import { BudgetGate } from "./budget/budget-gate.js";
import { BudgetSetSource } from "./budget/budget-set-source.js";
import { EnvelopeSource } from "./budget/envelope-source.js";
import type { EdgeConfig } from "./config.js";
import type { EdgeRouterDeps } from "./connect/router.js";
import { RedisBundleSource } from "./distribution/redis-bundle-source.js";
import type { BundleEvaluator } from "./evaluation/bundle-evaluator.js";
import { collectAuditBufferMetrics, createEdgeMetrics } from "./observability/edge-metrics.js";

export interface EdgeDeps extends EdgeRouterDeps {
  metrics: Metrics;
  logger: Logger;
  /** Refreshes what /metrics reads from elsewhere (the audit buffers' stats). */
  collectMetrics: () => Promise<void>;
}

/** How long a readiness answer is reused, so probes cannot load Redis. */
const READINESS_TTL_MS = 1000;

/**
 * Everything the edge keeps per isolate, built once from the parsed config. One
 * Redis client serves keys, bundles, rate limits and event deduplication; with
 * auto-pipelining, what a request asks in one tick travels as one round trip.
 * Decision events go to the audit buffer Durable Objects (edge/src/audit/).
 */
export function createEdgeDeps(config: EdgeConfig, evaluator: BundleEvaluator): EdgeDeps {
  const logger = createLogger("fulcrum-edge");
  const metrics = createEdgeMetrics();
  const redis = new Redis({
    url: config.redisRestUrl,
    token: config.redisRestToken,
    enableAutoPipelining: true,
    // Our own deadlines and failure modes apply; the client's retries would only delay them.
    retry: false,
  });
  const keys = policyKeysIn(config.redisKeyNamespace);
  const budgetKeys = budgetKeysIn(config.redisKeyNamespace);
  const now = () => Date.now();
  const audit = new AuditShards(config.audit.buffers, config.audit.shards);

  let readiness: { ready: boolean; at: number } | undefined;
  async function isReady(): Promise<boolean> {
    if (readiness && now() - readiness.at < READINESS_TTL_MS) return readiness.ready;
    let ready = false;
    try {
      ready = (await withDeadline(redis.ping(), config.redisTimeoutMs)) === "PONG";
    } catch {
      ready = false;
    }
    readiness = { ready, at: now() };
    return ready;
  }

  return {
    logger,
    metrics,
    now,
    isReady,
    evaluator,
    audit,
    events: new BufferedDecisionSink(audit, metrics),
    dedupe: new PublishDedupe({
      redis,
      prefix: `${config.redisKeyNamespace}:events:dedupe`,
      windowSeconds: Math.ceil(config.audit.streams.duplicateWindowMs / 1000),
      timeoutMs: config.redisTimeoutMs,
    }),
    collectMetrics: () => collectAuditBufferMetrics(metrics, audit),
    keys: new KeyAuthenticator({
      redis,
      keys,
      ttlMs: config.keyCacheTtlMs,
      timeoutMs: config.redisTimeoutMs,
      metrics,
    }),
    bundles: new RedisBundleSource({
      redis,
      keys,
      refreshMs: config.policyRefreshMs,
      timeoutMs: config.redisTimeoutMs,
      metrics,
      logger,
    }),
    budgets: new BudgetGate({
      sets: new BudgetSetSource({
        redis,
        keyOf: budgetKeys.budgetSet,
        refreshMs: config.policyRefreshMs,
        timeoutMs: config.redisTimeoutMs,
        metrics,
        logger,
      }),
      envelopes: new EnvelopeSource({ redis, keys: budgetKeys, timeoutMs: config.redisTimeoutMs }),
      ledger: new BudgetLedger({ redis, keys: budgetKeys, timeoutMs: config.redisTimeoutMs, now }),
      keys: budgetKeys,
      ttlMs: config.budgetReservationTtlMs,
      metrics,
      logger,
    }),
    approvals: new ApprovalGate({
      redis,
      keys: budgetKeys,
      ttlMs: config.approvalTtlMs,
      timeoutMs: config.redisTimeoutMs,
      now,
    }),
    limiters: new RateLimiters({
      redis,
      prefix: `${config.redisKeyNamespace}:rl`,
      timeoutMs: config.redisTimeoutMs,
    }),
  };
}
