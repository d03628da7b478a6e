import type { Redis } from "@upstash/redis";
import type { PolicyKeys, PolicyPointer } from "../../../core/distribution/policy-keys.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import type { PublishedPolicy } from "../../../core/policy-bundle/published-policy.js";

export interface PointerUpdate {
  tenantId: string;
  policyId: string;
  /** 0 takes the policy out of the tenant's active set. */
  version: number;
  revision: number;
  sha256: string;
  wasmSha256: string;
  /**
   * The policy's current name (PolicyPointer.name: results report it as policy_name).
   * Activation and rollback set it; a deactivation (version 0) may leave it out.
   */
  name?: string;
}

/**
 * Writes what the edge loads (core/distribution/policy-keys.ts). Activation is two
 * steps around the database transaction: `stage` stores the wasm and the version's
 * metadata first, `point` swaps the pointer after the commit. A failed `point` leaves the
 * edge on the previous version; activating the same version again re-publishes it.
 *
 * What `stage` writes is immutable: the wasm key is content-addressed and the version
 * key holds only what is fixed when the version is written (no policy name), and both
 * are written with SET NX, so the first write stays (any later one would be identical).
 * Staged keys of a transaction that then rolls back stay behind, unreferenced by any
 * pointer, and harmless (docs/decisions.md).
 */
export interface PolicyPublisher {
  stage(meta: PublishedPolicy, wasm: Uint8Array): Promise<void>;
  point(update: PointerUpdate): Promise<void>;
}

/** The stored per-version metadata: `meta` without the (mutable, evaluation-only) name. */
function storedMeta({ name: _name, ...stored }: PublishedPolicy): PublishedPolicy {
  return stored;
}

/**
 * Compare-and-set of the pointer, the tenant's active set and its generation in one
 * atomic step: a write whose revision is not newer than the stored pointer's is dropped.
 * KEYS: pointer, active set, generation. ARGV: policy id, version, revision, pointer JSON.
 */
const POINT_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current then
  local stored = cjson.decode(current)
  if tonumber(stored.revision) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[4])
if tonumber(ARGV[2]) > 0 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
else
  redis.call('HDEL', KEYS[2], ARGV[1])
end
redis.call('INCR', KEYS[3])
return 1
`;

function unavailable(step: string, cause: unknown): FulcrumError {
  return new FulcrumError(
    "Unavailable",
    `the policy store (Redis) is unavailable while ${step}; retry the call`,
    { cause, retry: true },
  );
}

export function createRedisPolicyPublisher(
  redis: Redis,
  policyKeys: PolicyKeys,
  now: () => Date = () => new Date(),
): PolicyPublisher {
  return {
    async stage(meta, wasm) {
      try {
        await redis
          .multi()
          .set(policyKeys.wasm(meta.wasm_sha256), Buffer.from(wasm).toString("base64"), {
            nx: true,
          })
          .set(
            policyKeys.version(meta.tenant_id, meta.policy_id, meta.version),
            JSON.stringify(storedMeta(meta)),
            { nx: true },
          )
          .exec();
      } catch (error) {
        throw unavailable("storing the compiled policy", error);
      }
    },

    async point(update) {
      const pointer: PolicyPointer = {
        version: update.version,
        revision: update.revision,
        sha256: update.sha256,
        wasm_sha256: update.wasmSha256,
        updated_at: now().toISOString(),
        ...(update.name === undefined ? {} : { name: update.name }),
      };
      try {
        await redis.eval(
          POINT_SCRIPT,
          [
            policyKeys.pointer(update.tenantId, update.policyId),
            policyKeys.activeSet(update.tenantId),
            policyKeys.generation(update.tenantId),
          ],
          [
            update.policyId,
            String(update.version),
            String(update.revision),
            JSON.stringify(pointer),
          ],
        );
      } catch (error) {
        throw unavailable("switching the policy's active version", error);
      }
    },
  };
}
