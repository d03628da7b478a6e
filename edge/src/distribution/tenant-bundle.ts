import type { PublishedPolicy } from "../../../core/policy-bundle/published-policy.js";
import type { RateLimitSpec } from "../../../core/rate-limit/rate-limit-spec.js";

/**
 * One tenant's active policies as the edge evaluates them: every active version's
 * published metadata and compiled wasm, read from Redis by the version pointers
 * (core/distribution/policy-keys.ts). Immutable once built.
 */
export interface TenantBundle {
  tenantId: string;
  /** The tenant's generation counter the bundle was read at. */
  generation: number;
  /**
   * Hex SHA-256 over the active (policy id, version, wasm sha256, name) tuples:
   * identical bundles share it, any change alters it. Names the loaded evaluator.
   */
  digest: string;
  /**
   * The active policies, in evaluation order: priority (desc), then policy id.
   * `name` is set from the pointer.
   */
  policies: readonly PublishedPolicy[];
  /** Compiled modules by `wasm_sha256`; bytes verified against their hash. */
  wasm: ReadonlyMap<string, Uint8Array>;
  /** Rate limits of the active policies that are not dry runs, in policy order. */
  rateLimits: readonly RateLimitSpec[];
}

/**
 * Where the edge gets a tenant's bundle. `get` answers from the isolate's cache and
 * revalidates it against the tenant's generation at most every refresh interval.
 *
 * Throws FulcrumError: "Unavailable" when Redis cannot be read and no bundle of the
 * tenant was ever loaded in this isolate; "FailedPrecondition" when nothing is
 * published for the tenant (no generation) or what is published is missing or
 * corrupt and there is no last good bundle. Never returns a partial bundle.
 */
export interface TenantBundleSource {
  get(tenantId: string): Promise<TenantBundle>;
}
