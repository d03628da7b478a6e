/**
 * The edge's API-key store (Redis, through @upstash/redis): one record per usable API key,
 * written by the control plane (functions/src/publish/key-publisher.ts) and read by the
 * edge to authenticate `x-api-key` / `Authorization: Bearer` without PostgreSQL. One
 * definition for both sides; web-standard only (core is compiled for Workers too).
 *
 * - Key: `${namespace}:apikey:${hash}`, `hash` being the lower-case hex SHA-256 of the
 *   secret (core/auth/api-key.ts `hashApiKey`), as stored in `api_keys.key_hash`.
 * - Value: an {@link ApiKeyRecord} as JSON. The tenant comes from the record alone.
 *
 * A key is usable (may authenticate) exactly when its record exists AND, when the record
 * has `expires_at`, that instant is still in the future. The control plane writes
 * records with a TTL ending at `expires_at`, but the edge must compare `expires_at`
 * itself too: its in-isolate cache may outlive the Redis entry. No record means the
 * key is not usable (unknown, revoked, expired, its user disabled or its tenant
 * suspended): the control plane deletes the record when any of those happens.
 */
import type { ApiKeyScope, UserRole } from "../auth/api-key.js";

/** What the edge learns about a key from its hash. */
export interface ApiKeyRecord {
  key_id: string;
  tenant_id: string;
  /** The user the key acts as; `role` is that user's role when the record was written. */
  user_id: string;
  scopes: ApiKeyScope[];
  role: UserRole;
  /** RFC 3339; absent when the key never expires. The edge must check it itself. */
  expires_at?: string;
  /** The user who minted the key; absent when the platform operator did. */
  created_by?: string;
}

/**
 * The Redis key of the record of the API key whose hash is `hash`, under `namespace`
 * (the same namespace as the policy keys: `policyKeysIn(namespace).apiKey`).
 *
 * @example const key = keyRecord("fulcrum:v1")(await hashApiKey(secret));
 */
export function keyRecord(namespace: string): (hash: string) => string {
  return (hash) => `${namespace}:apikey:${hash}`;
}

/** A SCAN pattern matching every key record under `namespace`. */
export function keyRecordPattern(namespace: string): string {
  return `${namespace}:apikey:*`;
}

/** The hash in a record key made by {@link keyRecord}; undefined for any other key. */
export function hashOfKeyRecord(namespace: string, redisKey: string): string | undefined {
  const prefix = `${namespace}:apikey:`;
  if (!redisKey.startsWith(prefix)) return undefined;
  const hash = redisKey.slice(prefix.length);
  return /^[0-9a-f]{64}$/.test(hash) ? hash : undefined;
}

/**
 * Parses a stored record; undefined when it is not one (the edge treats that like no
 * record: the key is not usable). Checks shape only, not expiry.
 */
export function parseApiKeyRecord(json: unknown): ApiKeyRecord | undefined {
  let value: unknown = json;
  if (typeof json === "string") {
    try {
      value = JSON.parse(json);
    } catch {
      return undefined;
    }
  }
  if (typeof value !== "object" || value === null) return undefined;
  const r = value as Record<string, unknown>;
  const str = (v: unknown) => typeof v === "string" && v !== "";
  if (!str(r.key_id) || !str(r.tenant_id) || !str(r.user_id)) return undefined;
  if (r.role !== "admin" && r.role !== "policy_author" && r.role !== "viewer") return undefined;
  if (!Array.isArray(r.scopes) || !r.scopes.every((s) => s === "check" || s === "manage")) {
    return undefined;
  }
  if (
    r.expires_at !== undefined &&
    !(str(r.expires_at) && !Number.isNaN(Date.parse(String(r.expires_at))))
  ) {
    return undefined;
  }
  if (r.created_by !== undefined && !str(r.created_by)) return undefined;
  return value as ApiKeyRecord;
}

/** Whether `record` may authenticate at `now` (its `expires_at`, when set, is later). */
export function isRecordUsable(record: ApiKeyRecord, now: Date): boolean {
  return record.expires_at === undefined || Date.parse(record.expires_at) > now.getTime();
}
