import type { Redis } from "@upstash/redis";
import { withDeadline } from "../../../core/async/deadline.js";
import { hashApiKey, looksLikeApiKey } from "../../../core/auth/api-key.js";
import { Lru } from "../../../core/cache/lru.js";
import { SingleFlight } from "../../../core/cache/single-flight.js";
import {
  type ApiKeyRecord,
  isRecordUsable,
  parseApiKeyRecord,
} from "../../../core/distribution/key-records.js";
import type { PolicyKeys } from "../../../core/distribution/policy-keys.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { createLogger, type Logger } from "../../../core/logging/logger.js";
import type { Metrics } from "../../../core/observability/metrics.js";

/** Counted once per `authenticate` call, by outcome. */
export const KEY_AUTHENTICATIONS_METRIC = "fulcrum_edge_key_authentications_total";

export type KeyAuthenticationOutcome =
  | "ok"
  | "stale"
  | "malformed"
  | "unknown"
  | "expired"
  | "unavailable";

export interface KeyAuthenticatorOptions {
  /** The store the control plane writes key records to (core/distribution/key-records.ts). */
  redis: Redis;
  /** Its key layout (`keys.apiKey(hash)`), in the control plane's namespace. */
  keys: PolicyKeys;
  /**
   * How long a found record is trusted without asking Redis again, in ms; default 2000.
   * A revoked key keeps working here for at most this long (the bound is 5 s).
   */
  ttlMs?: number;
  /**
   * While Redis cannot be read, a key verified within this many ms keeps working
   * (stale-if-error); default 300 000, 0 turns it off. No revocation can happen then:
   * the control plane refuses to revoke while Redis is down (it deletes the record
   * before it commits), so this only keeps known keys working through an outage,
   * where the tenant's failure modes decide (docs/decisions.md).
   */
  staleIfErrorMs?: number;
  /** How long "no such key" is remembered, in ms; default 1000. */
  negativeTtlMs?: number;
  /** Keys (hashes) cached, least recently used dropped first; default 10 000. */
  maxEntries?: number;
  /** The most one lookup waits on Redis, in ms; default 1000. */
  timeoutMs?: number;
  metrics?: Metrics;
  /** Default: JSON logs on the console (service "fulcrum-edge"). */
  logger?: Logger;
  /** The clock (tests); default `() => new Date()`. */
  now?: () => Date;
}

interface CacheEntry {
  /** Undefined: no usable record (none stored, or not a record). */
  record: ApiKeyRecord | undefined;
  /** Epoch ms after which Redis is asked again. */
  until: number;
  /** Epoch ms when Redis last confirmed the record. */
  verifiedAt: number;
}

const MALFORMED =
  'the API key is not a Fulcrum API key: expected "fk_" followed by 43 base64url characters, exactly as shown when the key was created';
const UNKNOWN =
  "the API key is not valid: it is unknown or revoked, or its user or tenant is disabled; use an active key or ask an admin of your tenant for a new one";
const expiredMessage = (record: ApiKeyRecord) =>
  `the API key expired at ${record.expires_at}: ask an admin of your tenant for a new key`;
const UNAVAILABLE = "the API key could not be verified: the key store is unreachable; retry";

/**
 * Authenticates API keys at the edge from the control plane's key records in Redis,
 * never from PostgreSQL: SHA-256 of the key (WebCrypto) → `keys.apiKey(hash)` → an
 * {@link ApiKeyRecord}. Lookups are cached per hash (found records for `ttlMs`, misses for
 * `negativeTtlMs`) and concurrent lookups of one hash share one GET. `expires_at` is
 * compared with the clock on every call, cached or not.
 *
 * When Redis cannot be read, a key Redis confirmed within `staleIfErrorMs` keeps working
 * (a known key through an outage); any other key is refused with Unavailable (failures
 * are not cached, so the next call asks again). Messages never contain the key.
 *
 * @example
 * const auth = new KeyAuthenticator({ redis, keys: policyKeysIn(namespace), metrics });
 * const key = parseApiKeyHeader(request.headers);
 * const record = key === undefined ? undefined : await auth.authenticate(key);
 */
export class KeyAuthenticator {
  private readonly redis: Redis;
  private readonly keys: PolicyKeys;
  private readonly ttlMs: number;
  private readonly negativeTtlMs: number;
  private readonly staleIfErrorMs: number;
  private readonly timeoutMs: number;
  private readonly metrics: Metrics | undefined;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly cache: Lru<string, CacheEntry>;
  private readonly lookups = new SingleFlight<string, CacheEntry>();

  constructor(options: KeyAuthenticatorOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.ttlMs = options.ttlMs ?? 2000;
    this.negativeTtlMs = options.negativeTtlMs ?? 1000;
    this.staleIfErrorMs = options.staleIfErrorMs ?? 300_000;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.metrics = options.metrics;
    this.logger = options.logger ?? createLogger("fulcrum-edge");
    this.now = options.now ?? (() => new Date());
    this.cache = new Lru({ maxEntries: options.maxEntries ?? 10_000 });
    this.metrics?.describe(
      KEY_AUTHENTICATIONS_METRIC,
      "API-key authentications at the edge by outcome (ok, malformed, unknown, expired, unavailable).",
    );
  }

  /**
   * The record of `rawKey` (a key as parseApiKeyHeader returns it).
   *
   * @throws FulcrumError("Unauthenticated") when the key is malformed (before any Redis
   * read), unknown, revoked or expired; FulcrumError("Unavailable") when Redis cannot be
   * read within `timeoutMs`.
   */
  async authenticate(rawKey: string): Promise<ApiKeyRecord> {
    if (!looksLikeApiKey(rawKey)) throw this.refuse("malformed", MALFORMED);
    const hash = await hashApiKey(rawKey);
    let entry = this.cache.get(hash);
    if (entry === undefined || this.now().getTime() >= entry.until) {
      try {
        entry = await this.lookups.run(hash, () => this.lookup(hash));
      } catch (error) {
        const stale = entry?.record;
        if (stale && this.now().getTime() - (entry?.verifiedAt ?? 0) <= this.staleIfErrorMs) {
          // Known key, Redis unreachable: keep serving it (bounded), say so in the metric.
          if (!isRecordUsable(stale, this.now())) {
            throw this.refuse("expired", expiredMessage(stale));
          }
          this.count("stale");
          return stale;
        }
        this.count("unavailable");
        this.logger.error("API-key lookup failed: the key store is unreachable", {
          key_hash_prefix: hash.slice(0, 12),
          error,
        });
        throw new FulcrumError("Unavailable", UNAVAILABLE, { cause: error, retry: true });
      }
    }
    const record = entry.record;
    if (record === undefined) throw this.refuse("unknown", UNKNOWN);
    if (!isRecordUsable(record, this.now())) {
      throw this.refuse("expired", expiredMessage(record));
    }
    this.count("ok");
    return record;
  }

  /** Reads and caches the record stored under `hash`; rejects when Redis cannot be read. */
  private async lookup(hash: string): Promise<CacheEntry> {
    const raw = await withDeadline(
      this.redis.get<unknown>(this.keys.apiKey(hash)),
      this.timeoutMs,
      "the key store did not answer",
    );
    let record: ApiKeyRecord | undefined;
    if (raw !== null && raw !== undefined) {
      record = parseApiKeyRecord(raw);
      if (record === undefined) {
        this.logger.error("API-key record is not valid; the key is refused (npm run keys:sync)", {
          key_hash_prefix: hash.slice(0, 12),
        });
      }
    }
    const ttl = record === undefined ? this.negativeTtlMs : this.ttlMs;
    const now = this.now().getTime();
    const entry = { record, until: now + ttl, verifiedAt: now };
    if (ttl > 0 || (record !== undefined && this.staleIfErrorMs > 0)) this.cache.set(hash, entry);
    else this.cache.delete(hash);
    return entry;
  }

  private refuse(outcome: KeyAuthenticationOutcome, message: string): FulcrumError {
    this.count(outcome);
    return new FulcrumError("Unauthenticated", message);
  }

  private count(outcome: KeyAuthenticationOutcome): void {
    this.metrics?.increment(KEY_AUTHENTICATIONS_METRIC, { outcome });
  }
}
