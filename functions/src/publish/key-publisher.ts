import type { Redis } from "@upstash/redis";
import type { ApiKeyRecord } from "../../../core/distribution/key-records.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";

/** A record and the hash it is stored under (the hash never leaves the control plane). */
export interface PublishedKey {
  hash: string;
  record: ApiKeyRecord;
}

/**
 * Writes the edge's API-key records (core/distribution/key-records.ts): `put` (re)writes
 * the records of usable keys, `remove` deletes the records of keys that stopped being
 * usable. Each call is one MULTI/EXEC. Callers write after their transaction commits,
 * never before (a rolled-back create must not leave a usable key at the edge); both
 * calls are idempotent, so repeating the call that failed repairs the store.
 *
 * A record of a key with `expires_at` is written with a TTL ending then (PX), so expired
 * keys disappear by themselves; a key already expired is deleted instead.
 */
export interface KeyPublisher {
  put(keys: readonly PublishedKey[]): Promise<void>;
  remove(hashes: readonly string[]): Promise<void>;
}

function unavailable(cause: unknown): FulcrumError {
  return new FulcrumError("Unavailable", "the API-key store (Redis) is unavailable", {
    cause,
    retry: true,
  });
}

export function createRedisKeyPublisher(
  redis: Redis,
  recordKey: (hash: string) => string,
  now: () => Date = () => new Date(),
): KeyPublisher {
  return {
    async put(keys) {
      if (keys.length === 0) return;
      const at = now().getTime();
      const tx = redis.multi();
      for (const { hash, record } of keys) {
        const value = JSON.stringify(record);
        if (record.expires_at === undefined) {
          tx.set(recordKey(hash), value);
          continue;
        }
        const ttl = Date.parse(record.expires_at) - at;
        if (ttl > 0) tx.set(recordKey(hash), value, { px: ttl });
        else tx.del(recordKey(hash));
      }
      try {
        await tx.exec();
      } catch (error) {
        throw unavailable(error);
      }
    },

    async remove(hashes) {
      if (hashes.length === 0) return;
      try {
        await redis
          .multi()
          .del(...hashes.map(recordKey))
          .exec();
      } catch (error) {
        throw unavailable(error);
      }
    },
  };
}
