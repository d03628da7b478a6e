import {
  type EventStreamSettings,
  parseEventStreamSettings,
} from "../../core/audit/event-stream.js";
import type { AuditBuffer } from "./audit/audit-buffer.js";

/** The Worker's bindings, as declared in wrangler.toml (vars) and set as secrets. */
export interface Env {
  /** `development`, `staging`, `production`: reported by /healthz. */
  ENVIRONMENT?: string;
  /** Upstash (or the local REST server in scripts/lib) in front of the policy store. */
  UPSTASH_REDIS_REST_URL?: string;
  /** Secret. */
  UPSTASH_REDIS_REST_TOKEN?: string;
  /** Key namespace shared with the control plane (default `fulcrum:v1`). */
  REDIS_KEY_NAMESPACE?: string;
  /** How long a verified API key is trusted before Redis is asked again (ms, default 2000, at most 4000). */
  KEY_CACHE_TTL_MS?: string;
  /** How often a tenant's bundle is revalidated against its generation (ms, default 500, at most 1000). */
  POLICY_REFRESH_MS?: string;
  /** Deadline of one Redis round trip before the failure mode applies (ms, default 1000). */
  REDIS_TIMEOUT_MS?: string;
  /** CPU limit of one evaluation in a policy isolate (ms, default 50). */
  EVALUATION_CPU_MS?: string;
  /** Origins browsers may call from: `*` (default) or a comma-separated list. */
  CORS_ALLOWED_ORIGINS?: string;
  /** Worker Loader: runs tenants' compiled policies (wrangler.toml `[[worker_loaders]]`). */
  LOADER?: WorkerLoader;
  /** The audit buffer Durable Object (wrangler.toml `[[durable_objects.bindings]]`). */
  AUDIT_BUFFER?: DurableObjectNamespace<AuditBuffer>;
  /** NATS WebSocket endpoint the audit buffer publishes to (`ws://` or `wss://`). */
  NATS_WS_URL?: string;
  /** Secret: NATS token (token auth); unset: no auth. Never logged. */
  NATS_TOKEN?: string;
  /** How many audit buffer instances decision events are spread over (default 4, at most 64). */
  AUDIT_SHARDS?: string;
  /** Audit stream settings (core/audit/event-stream.ts). */
  EVENTS_STREAM_MAX_AGE_HOURS?: string;
  EVENTS_STREAM_MAX_BYTES?: string;
  EVENTS_DUPLICATE_WINDOW_SECONDS?: string;
  /** How long a decision's budget reservation holds if never settled (s, default 300, at most 86400). */
  BUDGET_RESERVATION_TTL_SECONDS?: string;
  /** How long a pending approval waits for a reviewer (s, default 3600, at most 604800). */
  APPROVAL_TTL_SECONDS?: string;
}

/** What the audit buffer Durable Object needs: where and how to publish. */
export interface AuditTransportConfig {
  natsWsUrl: string;
  /** Secret; undefined: no auth. */
  natsToken: string | undefined;
  streams: EventStreamSettings;
}

/** The Worker's side of the audit pipeline. */
export interface AuditConfig extends AuditTransportConfig {
  buffers: DurableObjectNamespace<AuditBuffer>;
  shards: number;
}

export interface EdgeConfig {
  environment: string;
  redisRestUrl: string;
  redisRestToken: string;
  redisKeyNamespace: string;
  keyCacheTtlMs: number;
  policyRefreshMs: number;
  redisTimeoutMs: number;
  evaluationCpuMs: number;
  /** `"*"` or exact origins. */
  corsAllowedOrigins: "*" | readonly string[];
  loader: WorkerLoader;
  audit: AuditConfig;
  budgetReservationTtlMs: number;
  approvalTtlMs: number;
}

export class BadEnvironmentError extends Error {
  override readonly name = "BadEnvironmentError";
}

function required(env: Env, name: "UPSTASH_REDIS_REST_URL" | "UPSTASH_REDIS_REST_TOKEN"): string {
  const value = env[name]?.trim();
  if (!value) throw new BadEnvironmentError(`${name} is not set`);
  return value;
}

function milliseconds(
  env: Env,
  name: "KEY_CACHE_TTL_MS" | "POLICY_REFRESH_MS" | "REDIS_TIMEOUT_MS" | "EVALUATION_CPU_MS",
  fallback: number,
  max: number,
): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new BadEnvironmentError(`${name} must be a whole number of milliseconds, 1–${max}`);
  }
  return value;
}

function seconds(
  env: Env,
  name: "BUDGET_RESERVATION_TTL_SECONDS" | "APPROVAL_TTL_SECONDS",
  fallback: number,
  max: number,
): number {
  const raw = env[name]?.trim();
  if (!raw) return fallback * 1000;
  const value = Number(raw);
  if (!/^[0-9]+$/.test(raw) || value < 1 || value > max) {
    throw new BadEnvironmentError(`${name} must be a whole number of seconds, 1–${max}`);
  }
  return value * 1000;
}

/**
 * The audit transport settings, shared by the Worker and the AuditBuffer Durable
 * Object (each parses its own `env` once).
 */
export function parseAuditTransportConfig(env: Env): AuditTransportConfig {
  const natsWsUrl = env.NATS_WS_URL?.trim();
  if (!natsWsUrl) throw new BadEnvironmentError("NATS_WS_URL is not set");
  if (!/^wss?:\/\/[^/\s]+/.test(natsWsUrl)) {
    throw new BadEnvironmentError("NATS_WS_URL must be a ws:// or wss:// URL");
  }
  let streams: EventStreamSettings;
  try {
    streams = parseEventStreamSettings({
      EVENTS_STREAM_MAX_AGE_HOURS: env.EVENTS_STREAM_MAX_AGE_HOURS?.trim(),
      EVENTS_STREAM_MAX_BYTES: env.EVENTS_STREAM_MAX_BYTES?.trim(),
      EVENTS_DUPLICATE_WINDOW_SECONDS: env.EVENTS_DUPLICATE_WINDOW_SECONDS?.trim(),
    });
  } catch (error) {
    throw new BadEnvironmentError((error as Error).message);
  }
  return { natsWsUrl, natsToken: env.NATS_TOKEN?.trim() || undefined, streams };
}

function parseAuditConfig(env: Env): AuditConfig {
  if (!env.AUDIT_BUFFER) {
    throw new BadEnvironmentError(
      "the AUDIT_BUFFER Durable Object binding is missing (wrangler.toml [[durable_objects.bindings]])",
    );
  }
  const rawShards = env.AUDIT_SHARDS?.trim();
  const shards = rawShards ? Number(rawShards) : 4;
  if (!Number.isInteger(shards) || shards < 1 || shards > 64) {
    throw new BadEnvironmentError("AUDIT_SHARDS must be a whole number, 1–64");
  }
  return { ...parseAuditTransportConfig(env), buffers: env.AUDIT_BUFFER, shards };
}

/** Parsed once per isolate at the entry point; nothing else reads `env`. */
export function parseEdgeConfig(env: Env): EdgeConfig {
  const redisRestUrl = required(env, "UPSTASH_REDIS_REST_URL");
  if (!/^https?:\/\//.test(redisRestUrl)) {
    throw new BadEnvironmentError("UPSTASH_REDIS_REST_URL must be an http(s) URL");
  }
  if (!env.LOADER) {
    throw new BadEnvironmentError(
      "the LOADER Worker Loader binding is missing (wrangler.toml [[worker_loaders]])",
    );
  }
  const origins = env.CORS_ALLOWED_ORIGINS?.trim() || "*";
  return {
    environment: env.ENVIRONMENT?.trim() || "development",
    redisRestUrl,
    redisRestToken: required(env, "UPSTASH_REDIS_REST_TOKEN"),
    redisKeyNamespace: env.REDIS_KEY_NAMESPACE?.trim() || "fulcrum:v1",
    // Bounded so a misconfiguration cannot break the 5 s revocation and 1 s activation promises.
    keyCacheTtlMs: milliseconds(env, "KEY_CACHE_TTL_MS", 2000, 4000),
    policyRefreshMs: milliseconds(env, "POLICY_REFRESH_MS", 500, 1000),
    redisTimeoutMs: milliseconds(env, "REDIS_TIMEOUT_MS", 1000, 10_000),
    evaluationCpuMs: milliseconds(env, "EVALUATION_CPU_MS", 50, 30_000),
    corsAllowedOrigins:
      origins === "*"
        ? "*"
        : origins
            .split(",")
            .map((o) => o.trim())
            .filter(Boolean),
    loader: env.LOADER,
    audit: parseAuditConfig(env),
    // A reservation outlives the call it guards; the ledger holds one at most a day.
    budgetReservationTtlMs: seconds(env, "BUDGET_RESERVATION_TTL_SECONDS", 300, 86_400),
    approvalTtlMs: seconds(env, "APPROVAL_TTL_SECONDS", 3600, 7 * 86_400),
  };
}
