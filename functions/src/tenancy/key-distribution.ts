/**
 * Keeping the edge's API-key records (core/distribution/key-records.ts) in step with the
 * database. A call that changes whether a key is usable — creating or revoking it,
 * disabling or re-enabling its user, changing the user's role (which the record
 * carries), suspending or reactivating its tenant — does two things:
 *
 * 1. inside its transaction, after its writes, `keySyncFor(tx, which)` reads the affected
 *    keys (with their hashes, which never leave the control plane) and splits them into
 *    records to write (usable keys) and records to delete (every other one);
 * 2. after the commit, `publishKeySync` applies that to Redis. Never before: a rolled-back
 *    create must not leave a usable key at the edge. If Redis fails, the call answers
 *    Unavailable saying what is recorded and how to finish it; writing the same records
 *    again is harmless, so repeating the call repairs the store.
 *
 * "Usable" is what `fulcrum_authenticate_api_key` (migration 0003) accepts: not revoked,
 * not expired, the user enabled and the tenant active. Tenant-scoped calls run with a key
 * of an active tenant, so they take the tenant as active; TenantService says so itself.
 */
import { and, eq, type SQL, sql } from "drizzle-orm";
import type { ApiKeyScope, UserRole } from "../../../core/auth/api-key.js";
import type { ApiKeyRecord } from "../../../core/distribution/key-records.js";
import { FulcrumError } from "../../../core/errors/fulcrum-error.js";
import { apiKeys, users } from "../../../db/schema/index.js";
import type { Tx } from "../db/tenant-transaction.js";
import type { FunctionsDeps } from "../deps.js";
import type { PublishedKey } from "../publish/key-publisher.js";

/** What to write to and delete from the edge's key store after the commit. */
export interface KeySync {
  put: PublishedKey[];
  remove: string[];
}

export const NO_KEY_CHANGES: KeySync = { put: [], remove: [] };

/** A key as the record needs it; `usable` ignores the tenant's status. */
export interface KeyRecordRow {
  id: string;
  hash: string;
  tenantId: string;
  userId: string;
  scopes: ApiKeyScope[];
  role: UserRole;
  createdBy: string | null;
  expiresAt: Date | null;
  usable: boolean;
}

export function toPublishedKey(row: KeyRecordRow): PublishedKey {
  const record: ApiKeyRecord = {
    key_id: row.id,
    tenant_id: row.tenantId,
    user_id: row.userId,
    scopes: [...row.scopes],
    role: row.role,
    ...(row.expiresAt ? { expires_at: row.expiresAt.toISOString() } : {}),
    ...(row.createdBy ? { created_by: row.createdBy } : {}),
  };
  return { hash: row.hash, record };
}

/** Splits rows into records to write (usable, tenant active) and hashes to delete. */
export function toKeySync(rows: readonly KeyRecordRow[], tenantActive: boolean): KeySync {
  const sync: KeySync = { put: [], remove: [] };
  for (const row of rows) {
    if (tenantActive && row.usable) sync.put.push(toPublishedKey(row));
    else sync.remove.push(row.hash);
  }
  return sync;
}

/**
 * The keys of the transaction's tenant matching `which` (a condition on api_keys and/or
 * users), read after the call's writes so the split reflects them.
 */
export async function keySyncFor(
  tx: Tx,
  which: SQL | undefined,
  { tenantActive = true }: { tenantActive?: boolean } = {},
): Promise<KeySync> {
  const rows = await tx
    .select({
      id: apiKeys.id,
      hash: apiKeys.keyHash,
      tenantId: apiKeys.tenantId,
      userId: apiKeys.userId,
      scopes: apiKeys.scopes,
      role: users.role,
      createdBy: apiKeys.createdBy,
      expiresAt: apiKeys.expiresAt,
      usable: sql<boolean>`(${apiKeys.revokedAt} is null
        and (${apiKeys.expiresAt} is null or ${apiKeys.expiresAt} > now())
        and ${users.disabledAt} is null)`,
    })
    .from(apiKeys)
    .innerJoin(users, and(eq(users.tenantId, apiKeys.tenantId), eq(users.id, apiKeys.userId)))
    .where(which);
  return toKeySync(rows, tenantActive);
}

/**
 * Step 1b, inside the transaction, before its commit: the changes that may reach the
 * edge early without harm.
 * - Removals: the key is refused at the edge a moment before the database says so; if
 *   the commit then fails, the key is refused while still listed (fail closed), and
 *   repeating the call settles it.
 * - A brand-new key's record (`newKeys`): if the commit fails, its secret was never
 *   shown to anyone, so the record can never be used (`npm run keys:sync` removes it).
 *   Writing it first means a create either answers with a key that works at the edge or
 *   creates nothing — a secret shown once is never one the edge does not know.
 * A failure here rolls the transaction back. Returns what is left for after the commit:
 * records of existing keys that become usable again, which must not precede it.
 */
export async function stageKeySync(
  deps: Pick<FunctionsDeps, "keyPublisher">,
  sync: KeySync,
  options: { newKeys?: boolean } = {},
): Promise<KeySync> {
  try {
    await deps.keyPublisher.remove(sync.remove);
    if (options.newKeys) await deps.keyPublisher.put(sync.put);
  } catch (cause) {
    throw new FulcrumError(
      "Unavailable",
      "the API-key store (Redis) is unavailable: nothing was changed; retry the call",
      { cause, retry: true },
    );
  }
  return { put: options.newKeys ? [] : sync.put, remove: [] };
}

/**
 * Step 2, after the commit: what `stageKeySync` left (records of existing keys that
 * became usable again). On failure, Unavailable saying
 * `${what} is recorded but not yet at the edge; ${repair}`.
 */
export async function publishKeySync(
  deps: Pick<FunctionsDeps, "keyPublisher" | "logger">,
  sync: KeySync,
  what: string,
  repair = "repeat the same call to finish it",
): Promise<void> {
  try {
    await deps.keyPublisher.remove(sync.remove);
    await deps.keyPublisher.put(sync.put);
  } catch (cause) {
    deps.logger.error("API-key records not written after commit", {
      what,
      put: sync.put.map((k) => k.record.key_id),
      removed: sync.remove.length,
      error: cause,
    });
    throw new FulcrumError(
      "Unavailable",
      `${what} is recorded but not yet at the edge (the API-key store is unavailable); ${repair}`,
      { cause, retry: true },
    );
  }
}
