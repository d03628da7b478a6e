/**
 * The edge's policy distribution store (Redis, through @upstash/redis): the key layout
 * the control plane writes and the edge reads. One definition for both sides.
 *
 * - `wasm(sha)`: a compiled policy module, base64; content-addressed, so identical
 *   builds share one entry and an entry never changes.
 * - `version(t, p, v)`: the PublishedPolicy metadata of one immutable version (JSON).
 * - `pointer(t, p)`: which version of a policy the edge evaluates, as a
 *   {@link PolicyPointer} (JSON). A pointer with `version: 0` means "not active".
 * - `activeSet(t)`: hash policy id → active version number: every policy of the tenant
 *   the edge evaluates when a request names none.
 * - `generation(t)`: a counter bumped on every pointer change, so the edge can revalidate
 *   its cache of a tenant with one cheap read.
 * - `apiKey(hash)`: the record of one usable API key (core/distribution/key-records.ts),
 *   in the same namespace.
 */
import { keyRecord } from "./key-records.js";

/** The default namespace; a deployment may use its own to share one Redis between stages. */
export const DEFAULT_POLICY_KEY_NAMESPACE = "fulcrum:v1";

export type PolicyKeys = ReturnType<typeof policyKeysIn>;

/**
 * The keys under `namespace` (the control plane and the edge of one deployment must
 * agree on it; tests use a namespace of their own and delete it afterwards).
 *
 * @example const keys = policyKeysIn("fulcrum:v1"); await redis.get(keys.pointer(t, p));
 */
export function policyKeysIn(namespace: string = DEFAULT_POLICY_KEY_NAMESPACE) {
  return {
    namespace,
    wasm: (wasmSha256: string) => `${namespace}:wasm:${wasmSha256}`,
    version: (tenantId: string, policyId: string, version: number) =>
      `${namespace}:policy:${tenantId}:${policyId}:v${version}`,
    pointer: (tenantId: string, policyId: string) => `${namespace}:pointer:${tenantId}:${policyId}`,
    activeSet: (tenantId: string) => `${namespace}:tenant:${tenantId}:active`,
    generation: (tenantId: string) => `${namespace}:tenant:${tenantId}:generation`,
    apiKey: keyRecord(namespace),
  } as const;
}

export interface PolicyPointer {
  /** The active version; 0 when the policy is not active (INACTIVE, ARCHIVED). */
  version: number;
  /**
   * The policy's revision in PostgreSQL when the pointer was written. Writes carrying a
   * revision at or below the stored one are ignored, so two activations racing to Redis
   * can never leave the older one in place.
   */
  revision: number;
  /** sha256 of the version's definition and of its wasm; empty when not active. */
  sha256: string;
  wasm_sha256: string;
  updated_at: string;
  /**
   * The policy's name when the pointer was written (results report it as policy_name).
   * A rename reaches the edge with the next activation. Missing in older pointers.
   */
  name?: string;
}
