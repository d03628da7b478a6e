import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { neonConfig, Pool } from "@neondatabase/serverless";
import { Redis } from "@upstash/redis";
import { hashOfKeyRecord, keyRecordPattern } from "../core/distribution/key-records.js";
import { DEFAULT_POLICY_KEY_NAMESPACE, policyKeysIn } from "../core/distribution/policy-keys.js";
import { configureNeonForLocalProxy } from "../db/neon-local-proxy.js";
import { createRedisKeyPublisher } from "../functions/src/publish/key-publisher.js";
import {
  type KeyRecordRow,
  toKeySync,
  toPublishedKey,
} from "../functions/src/tenancy/key-distribution.js";
import { loadLocalCredentials } from "./lib/local-credentials.js";
import { type PgWsProxy, startPgWsProxy } from "./lib/pg-ws-proxy.js";

/**
 * `npm run keys:sync`: makes the edge's API-key records (core/distribution/key-records.ts)
 * match the database, for operators (after a Redis outage, a restore, a new Redis) and the
 * local stack. Every usable key's record is rewritten; every record under the namespace
 * whose hash is not a usable key (revoked, expired, disabled user, suspended tenant, or
 * unknown) is deleted, found with SCAN.
 *
 * Reads as the database owner, across tenants: DATABASE_URL (default
 * postgres://postgres@127.0.0.1:5432/fulcrum; a local address goes through the local
 * WebSocket proxy, as `npm run db:*` does). Redis: UPSTASH_REDIS_REST_URL and
 * UPSTASH_REDIS_REST_TOKEN (default: the local stack's Upstash-REST server and token),
 * REDIS_KEY_NAMESPACE (default fulcrum:v1).
 *
 * Safe to run while the management API runs: before deleting a record it asks the
 * database again whether the hash is usable, so a key created meanwhile keeps its record.
 */
const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/fulcrum";
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);
const BATCH = 500;

interface Queryable {
  query<R>(text: string, params?: unknown[]): Promise<{ rows: R[] }>;
}

const KEY_ROWS = `
  select k.id, k.key_hash as hash, k.tenant_id as "tenantId", k.user_id as "userId", k.scopes,
         u.role, k.created_by as "createdBy", k.expires_at as "expiresAt",
         (k.revoked_at is null and (k.expires_at is null or k.expires_at > now())
          and u.disabled_at is null and t.status = 'active') as usable
    from api_keys k
    join users u on u.tenant_id = k.tenant_id and u.id = k.user_id
    join tenants t on t.id = k.tenant_id`;

export interface SyncReport {
  written: number;
  deleted: number;
}

/** The reconciliation itself, over an owner connection and a Redis client. */
export async function syncApiKeys(
  db: Queryable,
  redis: Redis,
  namespace: string,
): Promise<SyncReport> {
  const keys = policyKeysIn(namespace);
  const publisher = createRedisKeyPublisher(redis, keys.apiKey);
  const { rows } = await db.query<KeyRecordRow>(KEY_ROWS);
  const { put } = toKeySync(rows, true);
  for (let i = 0; i < put.length; i += BATCH) await publisher.put(put.slice(i, i + BATCH));
  const usable = new Set(put.map((k) => k.hash));

  let deleted = 0;
  let cursor = "0";
  do {
    const [next, found] = await redis.scan(cursor, {
      match: keyRecordPattern(namespace),
      count: BATCH,
    });
    cursor = String(next);
    const stale = found.filter((key) => {
      const hash = hashOfKeyRecord(namespace, key);
      return hash === undefined || !usable.has(hash);
    });
    if (stale.length === 0) continue;
    // Usable by now (created since the first read): keep, and write its current record.
    const hashes = stale.map((key) => hashOfKeyRecord(namespace, key) ?? "");
    const { rows: fresh } = await db.query<KeyRecordRow>(
      `${KEY_ROWS} where k.key_hash = any($1::text[])`,
      [hashes],
    );
    const nowUsable = fresh.filter((r) => r.usable);
    await publisher.put(nowUsable.map(toPublishedKey));
    const keep = new Set(nowUsable.map((r) => keys.apiKey(r.hash)));
    const doomed = stale.filter((key) => !keep.has(key));
    if (doomed.length > 0) deleted += await redis.del(...doomed);
  } while (cursor !== "0");
  return { written: put.length, deleted };
}

async function main(): Promise<void> {
  const url = new URL(process.env.DATABASE_URL ?? DEFAULT_URL);
  const namespace = process.env.REDIS_KEY_NAMESPACE ?? DEFAULT_POLICY_KEY_NAMESPACE;
  const redisUrl =
    process.env.UPSTASH_REDIS_REST_URL ??
    `http://127.0.0.1:${process.env.FULCRUM_REDIS_REST_PORT ?? "8079"}`;
  const token = process.env.UPSTASH_REDIS_REST_TOKEN ?? loadLocalCredentials().redisRestToken;
  let proxy: PgWsProxy | undefined;
  if (LOCAL_HOSTS.has(url.hostname)) {
    proxy = await startPgWsProxy({ allowedTargets: [`${url.hostname}:${url.port || "5432"}`] });
    configureNeonForLocalProxy(neonConfig, proxy.port);
  }
  const pool = new Pool({ connectionString: url.toString(), max: 1 });
  try {
    const report = await syncApiKeys(pool, new Redis({ url: redisUrl, token }), namespace);
    console.log(
      `API-key records under ${namespace}: ${report.written} written, ${report.deleted} deleted`,
    );
  } finally {
    await pool.end();
    await proxy?.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
