import type { Redis } from "@upstash/redis";
import { Deadline, DeadlineExceededError } from "../../../core/async/deadline.js";
import { Lru } from "../../../core/cache/lru.js";
import { SingleFlight } from "../../../core/cache/single-flight.js";
import type { PolicyKeys, PolicyPointer } from "../../../core/distribution/policy-keys.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { createLogger, type Logger } from "../../../core/logging/logger.js";
import type { Metrics } from "../../../core/observability/metrics.js";
import type { PublishedPolicy } from "../../../core/policy-bundle/published-policy.js";
import {
  type RateLimitSpec,
  validateRateLimitSpec,
} from "../../../core/rate-limit/rate-limit-spec.js";
import type { TenantBundle, TenantBundleSource } from "./tenant-bundle.js";

/** Counted once per load that ends in a new bundle, a kept bundle or an error. */
export const BUNDLE_LOADS_METRIC = "fulcrum_edge_bundle_loads_total";

export interface RedisBundleSourceOptions {
  /**
   * The distribution store. Any @upstash/redis client works (automatic deserialization
   * on or off, with or without auto-pipelining): reads are batched with MULTI/MGET.
   */
  redis: Redis;
  /** The key layout, in the namespace the control plane publishes to. */
  keys: PolicyKeys;
  /** How long a cached bundle is served before its generation is read again; default 500. */
  refreshMs?: number;
  /** Tenants whose bundles are cached (least recently used ones are dropped); default 256. */
  maxTenants?: number;
  /**
   * Bytes of wasm kept in the shared, content-addressed module cache (least recently
   * used modules are dropped; bundles keep the modules they hold); default 32 MiB.
   */
  maxWasmBytes?: number;
  /** The most one load or revalidation may wait on Redis, in ms; default 1000. */
  timeoutMs?: number;
  metrics?: Metrics;
  /** Default: JSON logs on the console (service "fulcrum-edge"). */
  logger?: Logger;
  /** The clock (tests); default `() => new Date()`. */
  now?: () => Date;
}

export interface RedisBundleSourceStats {
  /** Tenants cached (with a bundle, or with the error of their last load). */
  tenants: number;
  wasmModules: number;
  wasmBytes: number;
}

interface TenantEntry {
  /** The last good bundle, if any was ever loaded. */
  bundle?: TenantBundle;
  /** The error of the last load, when there is no bundle (answered until the next refresh). */
  error?: FulcrumError;
  /** When the entry was last (re)validated against Redis, successful or not (epoch ms). */
  checkedAt: number;
}

/** Read attempts when the tenant's pointers change while they are being read. */
const MAX_READ_ATTEMPTS = 3;
const SHA256_HEX = /^[0-9a-f]{64}$/;

/**
 * The edge's {@link TenantBundleSource} over the control plane's Redis layout
 * (core/distribution/policy-keys.ts).
 *
 * - A bundle checked less than `refreshMs` ago is returned as is. Otherwise one GET of
 *   the tenant's generation revalidates it; only when the generation moved (or on the
 *   first load) is the bundle read again: MULTI [GET generation, HGETALL active set],
 *   MULTI [GET generation, MGET pointers, MGET version metadata] (the generation read
 *   twice proves both snapshots belong together; a change in between rereads), then
 *   one MGET of the wasm modules not already cached. Every module's bytes are checked
 *   against their SHA-256 and every version's metadata against its pointer.
 * - Concurrent `get`s of a tenant share one load (single flight).
 * - Any failure keeps the last good bundle serving (logged, counted as
 *   `kept_last_good`) and is retried at the next refresh; without one, `get` throws
 *   (and throws the same error until the next refresh): Unavailable when Redis cannot
 *   be read in `timeoutMs`, FailedPrecondition when nothing is published or what is
 *   published is missing or corrupt.
 * - Wasm modules are shared across tenants by hash, in an LRU bounded by bytes.
 *
 * @example
 * const bundles = new RedisBundleSource({ redis, keys: policyKeysIn(namespace), metrics });
 * const bundle = await bundles.get(record.tenant_id);
 */
export class RedisBundleSource implements TenantBundleSource {
  private readonly redis: Redis;
  private readonly keys: PolicyKeys;
  private readonly refreshMs: number;
  private readonly timeoutMs: number;
  private readonly metrics: Metrics | undefined;
  private readonly logger: Logger;
  private readonly now: () => Date;
  private readonly tenants: Lru<string, TenantEntry>;
  private readonly wasmCache: Lru<string, Uint8Array>;
  private readonly loads = new SingleFlight<string, TenantBundle>();

  constructor(options: RedisBundleSourceOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.refreshMs = options.refreshMs ?? 500;
    this.timeoutMs = options.timeoutMs ?? 1000;
    this.metrics = options.metrics;
    this.logger = options.logger ?? createLogger("fulcrum-edge");
    this.now = options.now ?? (() => new Date());
    this.tenants = new Lru({ maxEntries: options.maxTenants ?? 256 });
    this.wasmCache = new Lru({
      maxSize: options.maxWasmBytes ?? 32 * 1024 * 1024,
      sizeOf: (bytes) => bytes.byteLength,
    });
    this.metrics?.describe(
      BUNDLE_LOADS_METRIC,
      "Tenant bundle loads from Redis by outcome (loaded, kept_last_good, failed).",
    );
  }

  async get(tenantId: string): Promise<TenantBundle> {
    const entry = this.tenants.get(tenantId);
    if (entry !== undefined && this.now().getTime() - entry.checkedAt < this.refreshMs) {
      if (entry.bundle !== undefined) return entry.bundle;
      if (entry.error !== undefined) throw entry.error;
    }
    return this.loads.run(tenantId, () => this.refresh(tenantId));
  }

  stats(): RedisBundleSourceStats {
    return {
      tenants: this.tenants.count,
      wasmModules: this.wasmCache.count,
      wasmBytes: this.wasmCache.size,
    };
  }

  private async refresh(tenantId: string): Promise<TenantBundle> {
    const previous = this.tenants.peek(tenantId)?.bundle;
    let bundle: TenantBundle;
    try {
      bundle = await this.load(tenantId, previous);
    } catch (caught) {
      const error = asFulcrumError(caught, this.timeoutMs);
      const checkedAt = this.now().getTime();
      if (previous !== undefined) {
        this.count("kept_last_good");
        this.logger.error("tenant bundle reload failed; serving the last good bundle", {
          tenant_id: tenantId,
          generation: previous.generation,
          digest: previous.digest,
          error,
        });
        this.tenants.set(tenantId, { bundle: previous, checkedAt });
        return previous;
      }
      this.count("failed");
      const fields = { tenant_id: tenantId, error };
      if (isNothingPublished(error)) this.logger.info("tenant has no published policy", fields);
      else this.logger.error("tenant bundle could not be loaded", fields);
      this.tenants.set(tenantId, { error, checkedAt });
      throw error;
    }
    if (bundle !== previous) {
      this.count("loaded");
      this.logger.info("tenant bundle loaded", {
        tenant_id: tenantId,
        generation: bundle.generation,
        digest: bundle.digest,
        policies: bundle.policies.length,
      });
    }
    this.tenants.set(tenantId, { bundle, checkedAt: this.now().getTime() });
    return bundle;
  }

  /** The tenant's current bundle: `previous` itself when its generation still holds. */
  private async load(tenantId: string, previous: TenantBundle | undefined): Promise<TenantBundle> {
    const deadline = new Deadline(this.timeoutMs);
    try {
      if (previous !== undefined) {
        const raw = await deadline.race(this.redis.get(this.keys.generation(tenantId)));
        if (raw !== null && parseGeneration(raw) === previous.generation) return previous;
      }
      for (let attempt = 1; ; attempt += 1) {
        const bundle = await this.read(tenantId, previous, deadline);
        if (bundle !== undefined) return bundle;
        if (attempt >= MAX_READ_ATTEMPTS) {
          throw new FulcrumError(
            "Unavailable",
            `the tenant's policies changed ${MAX_READ_ATTEMPTS} times while they were being loaded; retry`,
          );
        }
      }
    } finally {
      deadline.clear();
    }
  }

  /** A fresh bundle, or undefined when the pointers changed while they were read. */
  private async read(
    tenantId: string,
    previous: TenantBundle | undefined,
    deadline: Deadline,
  ): Promise<TenantBundle | undefined> {
    const generationKey = this.keys.generation(tenantId);
    const [rawGeneration, rawActive] = await deadline.race(
      this.redis
        .multi()
        .get(generationKey)
        .hgetall(this.keys.activeSet(tenantId))
        .exec<[unknown, Record<string, unknown> | unknown[] | null]>(),
    );
    if (rawGeneration === null || rawGeneration === undefined) throw nothingPublished();
    const generation = parseGeneration(rawGeneration);
    const active = parseActiveSet(rawActive);

    const policyIds = [...active.keys()].sort(byCodeUnit);
    const pointers: PolicyPointer[] = [];
    const metas: PublishedPolicy[] = [];
    if (policyIds.length > 0) {
      const [again, rawPointers, rawMetas] = await deadline.race(
        this.redis
          .multi()
          .get(generationKey)
          .mget(...policyIds.map((p) => this.keys.pointer(tenantId, p)))
          .mget(...policyIds.map((p) => this.keys.version(tenantId, p, active.get(p) as number)))
          .exec<[unknown, unknown[], unknown[]]>(),
      );
      if (again === null || again === undefined || parseGeneration(again) !== generation) {
        return undefined;
      }
      policyIds.forEach((policyId, i) => {
        const version = active.get(policyId) as number;
        const pointer = parsePointer(rawPointers[i], policyId, version);
        pointers.push(pointer);
        metas.push(parseMeta(rawMetas[i], tenantId, policyId, pointer));
      });
    }

    const wasm = await this.modules(
      pointers.map((p) => p.wasm_sha256),
      previous,
      deadline,
    );

    const policies = metas.map((meta, i) =>
      Object.freeze({ ...meta, name: pointers[i]?.name ?? "" }),
    );
    const tuples = policies.map((p) => [p.policy_id, p.version, p.wasm_sha256, p.name]);
    policies.sort((a, b) => b.priority - a.priority || byCodeUnit(a.policy_id, b.policy_id));
    const rateLimits: RateLimitSpec[] = policies.flatMap((p) =>
      p.dry_run ? [] : (p.rate_limits ?? []),
    );
    return Object.freeze({
      tenantId,
      generation,
      digest: await sha256Hex(new TextEncoder().encode(JSON.stringify(tuples))),
      policies: Object.freeze(policies),
      wasm,
      rateLimits: Object.freeze(rateLimits),
    });
  }

  /** The modules of `shas`: from the previous bundle, the shared cache, then Redis. */
  private async modules(
    shas: string[],
    previous: TenantBundle | undefined,
    deadline: Deadline,
  ): Promise<Map<string, Uint8Array>> {
    const wasm = new Map<string, Uint8Array>();
    const missing: string[] = [];
    for (const sha of new Set(shas)) {
      const bytes = previous?.wasm.get(sha) ?? this.wasmCache.get(sha);
      if (bytes !== undefined) wasm.set(sha, bytes);
      else missing.push(sha);
    }
    if (missing.length > 0) {
      const raw = await deadline.race(
        this.redis.mget<unknown[]>(...missing.map((sha) => this.keys.wasm(sha))),
      );
      for (const [i, sha] of missing.entries()) {
        const bytes = decodeModule(raw[i], sha);
        if ((await sha256Hex(bytes)) !== sha) {
          throw corrupt(`the compiled module (wasm) ${sha} does not match its SHA-256`);
        }
        wasm.set(sha, bytes);
      }
    }
    for (const [sha, bytes] of wasm) this.wasmCache.set(sha, bytes);
    return wasm;
  }

  private count(outcome: "loaded" | "kept_last_good" | "failed"): void {
    this.metrics?.increment(BUNDLE_LOADS_METRIC, { outcome });
  }
}

const NOTHING_PUBLISHED = "no policy is published for this tenant: activate a policy";

function nothingPublished(): FulcrumError {
  return new FulcrumError("FailedPrecondition", NOTHING_PUBLISHED);
}

function isNothingPublished(error: FulcrumError): boolean {
  return error.message === NOTHING_PUBLISHED;
}

function corrupt(detail: string): FulcrumError {
  return new FulcrumError(
    "FailedPrecondition",
    `the tenant's published policies are incomplete or corrupt (${detail}): activate the policy version again to republish it, or ask the operator to repair the policy store`,
  );
}

function asFulcrumError(error: unknown, timeoutMs: number): FulcrumError {
  if (error instanceof FulcrumError) return error;
  if (error instanceof DeadlineExceededError) {
    return new FulcrumError(
      "Unavailable",
      `the policy store (Redis) did not answer within ${timeoutMs} ms: the tenant's policies could not be loaded; retry`,
      { cause: error },
    );
  }
  // A key of the wrong type is data, not connectivity.
  if (error instanceof Error && error.message.includes("WRONGTYPE")) {
    const e = corrupt("a key holds the wrong type of value");
    return new FulcrumError(e.kind, e.message, { cause: error });
  }
  return new FulcrumError(
    "Unavailable",
    "the policy store (Redis) is unreachable: the tenant's policies could not be loaded; retry",
    { cause: error },
  );
}

/** A stored JSON value: parsed already (automatic deserialization) or a string. */
function fromJson(value: unknown): unknown {
  if (typeof value !== "string") return value;
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === "object" && v !== null && !Array.isArray(v);
const isVersion = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;
const byCodeUnit = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

function parseGeneration(raw: unknown): number {
  const n = typeof raw === "string" && /^[0-9]+$/.test(raw) ? Number(raw) : raw;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) {
    throw corrupt("the generation counter is not a number");
  }
  return n;
}

/**
 * HGETALL's answer: an object, or (automatic deserialization off) the flat
 * [field, value, ...] list Redis sends.
 */
function parseActiveSet(raw: Record<string, unknown> | unknown[] | null): Map<string, number> {
  const entries: [string, unknown][] = [];
  if (Array.isArray(raw)) {
    for (let i = 0; i + 1 < raw.length; i += 2) entries.push([String(raw[i]), raw[i + 1]]);
  } else if (isObject(raw)) {
    entries.push(...Object.entries(raw));
  } else if (raw !== null && raw !== undefined) {
    throw corrupt("the active set is not a hash");
  }
  const active = new Map<string, number>();
  for (const [policyId, value] of entries) {
    const version = typeof value === "string" && /^[0-9]+$/.test(value) ? Number(value) : value;
    if (!isVersion(version)) {
      throw corrupt(`policy ${policyId}: the active set holds no valid version`);
    }
    active.set(policyId, version);
  }
  return active;
}

function parsePointer(raw: unknown, policyId: string, version: number): PolicyPointer {
  if (raw === null || raw === undefined)
    throw corrupt(`policy ${policyId}: its pointer is missing`);
  const p = fromJson(raw);
  if (
    !isObject(p) ||
    !isVersion(p.version) ||
    typeof p.sha256 !== "string" ||
    typeof p.wasm_sha256 !== "string" ||
    !SHA256_HEX.test(p.wasm_sha256) ||
    (p.name !== undefined && typeof p.name !== "string")
  ) {
    throw corrupt(`policy ${policyId}: its pointer is not valid`);
  }
  if (p.version !== version) {
    throw corrupt(
      `policy ${policyId}: its pointer names version ${p.version}, the active set ${version}`,
    );
  }
  return p as unknown as PolicyPointer;
}

function parseMeta(
  raw: unknown,
  tenantId: string,
  policyId: string,
  pointer: PolicyPointer,
): PublishedPolicy {
  const at = `policy ${policyId} version ${pointer.version}`;
  if (raw === null || raw === undefined) throw corrupt(`${at}: its metadata is missing`);
  const m = fromJson(raw);
  if (
    !isObject(m) ||
    typeof m.entrypoint !== "string" ||
    (m.source_kind !== "rego" && m.source_kind !== "rules") ||
    typeof m.enforcement !== "string" ||
    typeof m.dry_run !== "boolean" ||
    typeof m.priority !== "number" ||
    !Number.isFinite(m.priority) ||
    !isObject(m.scope) ||
    (m.rules !== undefined && !Array.isArray(m.rules)) ||
    (m.rate_limits !== undefined && !Array.isArray(m.rate_limits))
  ) {
    throw corrupt(`${at}: its metadata is not valid`);
  }
  if (
    m.tenant_id !== tenantId ||
    m.policy_id !== policyId ||
    m.version !== pointer.version ||
    m.sha256 !== pointer.sha256 ||
    m.wasm_sha256 !== pointer.wasm_sha256
  ) {
    throw corrupt(`${at}: its metadata does not match the pointer`);
  }
  const problems = ((m.rate_limits as unknown[] | undefined) ?? []).flatMap((spec, i) =>
    validateRateLimitSpec(spec, `rate_limits[${i}]`),
  );
  if (problems[0] !== undefined) {
    throw corrupt(`${at}: ${problems[0].path}: ${problems[0].message}`);
  }
  return m as unknown as PublishedPolicy;
}

function decodeModule(raw: unknown, sha: string): Uint8Array<ArrayBuffer> {
  if (raw === null || raw === undefined) {
    throw corrupt(`the compiled module (wasm) ${sha} is missing`);
  }
  if (typeof raw !== "string") throw corrupt(`the compiled module (wasm) ${sha} is not base64`);
  let binary: string;
  try {
    binary = atob(raw);
  } catch {
    throw corrupt(`the compiled module (wasm) ${sha} is not base64`);
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

/** Hex SHA-256 of `bytes` (always backed by a plain ArrayBuffer here). */
async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
