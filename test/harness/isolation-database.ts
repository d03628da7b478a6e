import { randomUUID } from "node:crypto";
import { getTableName } from "drizzle-orm";
import { afterAll, beforeAll, inject } from "vitest";
import type { Db, Schema } from "../../db/client.js";
import { tenantTables } from "../../db/schema/index.js";
import { type TenantTx, withTenant } from "../../db/tenant-context.js";
import {
  type DbConnection,
  type FreshDatabase,
  openFreshDatabase,
  sqlState,
} from "./fresh-database.js";
import { type Ids, seedTenant, TABLE_KEYS } from "./tenant-fixtures.js";

/**
 * The setup the two row-level isolation tests share (tenant-isolation.test.ts, as
 * fulcrum_app, and platform-role-isolation.test.ts, as fulcrum_platform): a fresh database
 * with 3–5 random tenants seeded as the owner, connections as both roles, and the helpers
 * that run a check in a rolled-back transaction and read a role's grants.
 */

export interface IsolationDatabase {
  readonly db: FreshDatabase;
  /** The owner (postgres, a superuser: RLS does not apply to it). */
  readonly owner: DbConnection;
  /** The application role fulcrum_app (NOSUPERUSER NOBYPASSRLS), as the functions connect. */
  readonly app: DbConnection;
  /** TenantService's role: fulcrum_app's grants plus `tenants` (migration 0003). */
  readonly platform: DbConnection;
  /** tenant id → the ids of its rows, per table. */
  readonly seeded: ReadonlyMap<string, Ids>;
}

/** A fresh, migrated database with 3–5 random tenants, and connections as both roles. */
export async function openIsolationDatabase(pg: string): Promise<IsolationDatabase> {
  const db = await openFreshDatabase(pg, "fulcrum_iso");
  try {
    const seeded = new Map<string, Ids>();
    const count = 3 + Math.floor(Math.random() * 3); // 3–5 random tenants
    for (let i = 1; i <= count; i++) {
      const tenantId = randomUUID();
      seeded.set(tenantId, await seedTenant(db.owner.db, tenantId, i));
    }
    const app = db.connectAs("fulcrum_app");
    const platform = db.connectAs("fulcrum_platform");
    return { db, owner: db.owner, app, platform, seeded };
  } catch (error) {
    await db.close();
    throw error;
  }
}

/**
 * Registers the file's beforeAll/afterAll: opens the isolation database on the machine's
 * PostgreSQL before the file's tests (handing it to `onOpen`) and closes it after them.
 */
export function useIsolationDatabase(onOpen: (iso: IsolationDatabase) => void): void {
  let iso: IsolationDatabase | undefined;
  beforeAll(async () => {
    iso = await openIsolationDatabase(inject("pgAddress"));
    onOpen(iso);
  }, 60_000);
  afterAll(async () => {
    await iso?.db.close();
  });
}

export type Tx = TenantTx<Schema>;
export const idsOf = (rows: { id: string }[]) => rows.map((r) => r.id).sort();

/** Thrown to roll back a check's transaction once its result is known. */
class RolledBack<T> extends Error {
  constructor(readonly result: T) {
    super("rolled back");
  }
}

/**
 * Runs `fn` as `db`'s role in `tenantId`'s context in one transaction that is always
 * rolled back; returns what `fn` returned, or the SQLSTATE it failed with.
 */
export async function attempt<T>(
  tenantId: string,
  fn: (tx: Tx) => Promise<T>,
  db: Db,
): Promise<T | string | undefined> {
  try {
    await withTenant(db, tenantId, async (tx) => {
      throw new RolledBack(await fn(tx));
    });
  } catch (error) {
    if (error instanceof RolledBack) return error.result as T;
    return sqlState(error) ?? String(error);
  }
  return undefined;
}

/** The tenant tables the role may not UPDATE or DELETE (its grants say so). */
export async function appendOnlyTables(conn: DbConnection): Promise<Set<string>> {
  const names = TABLE_KEYS.map((key) => getTableName(tenantTables[key]));
  const { rows } = await conn.pool.query(
    `SELECT t AS name FROM unnest($1::text[]) t
      WHERE NOT has_table_privilege(current_user, t, 'UPDATE')
        AND NOT has_table_privilege(current_user, t, 'DELETE')
        AND has_table_privilege(current_user, t, 'INSERT')`,
    [names],
  );
  return new Set(rows.map((r) => String(r.name)));
}
