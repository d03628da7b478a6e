import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Client, neonConfig, Pool } from "@neondatabase/serverless";
import { expect } from "vitest";
import { createDb } from "../../db/client.js";
import { migrate } from "../../db/migrate.js";
import { configureNeonForLocalProxy } from "../../db/neon-local-proxy.js";
import { type PgWsProxy, startPgWsProxy } from "../../scripts/lib/pg-ws-proxy.js";
import { repoRoot } from "../../scripts/services/service.js";
import { dropTempDatabase } from "./temp-database.js";

/**
 * A fresh database with the real migrations, for the integration tests that check the
 * database's roles themselves (tenant isolation, API-key authentication): the owner
 * connection (postgres, a superuser, so RLS does not apply to it) to seed with, and
 * connections as the application's roles the way the functions make them: drizzle →
 * Neon Pool → WS proxy → PostgreSQL. Also the SQLSTATE assertions those tests share.
 */

export type DbConnection = ReturnType<typeof createDb>;

export interface FreshDatabase {
  /** The database's name: `${prefix}_` and 8 random hex digits. */
  readonly name: string;
  /** The owner (postgres, a superuser: RLS does not apply to it), for seeding. */
  readonly owner: DbConnection;
  /**
   * A connection as `role` through the proxy. max 1: every query and transaction reuses
   * one connection, so anything a transaction left in the session would show.
   */
  connectAs(role: string): DbConnection;
  /** Closes every connection (the roles' first, then the owner's) and drops the database. */
  close(): Promise<void>;
}

/** Creates and migrates a database `${prefix}_<random>` on the machine's PostgreSQL `pg`. */
export async function openFreshDatabase(pg: string, prefix: string): Promise<FreshDatabase> {
  const name = `${prefix}_${randomBytes(4).toString("hex")}`;
  let proxy: PgWsProxy | undefined;
  let admin: Pool | undefined;
  let owner: DbConnection | undefined;
  const roles: DbConnection[] = [];

  const close = async () => {
    for (const conn of roles) await conn.close();
    await owner?.close();
    if (admin) {
      await dropTempDatabase(admin, name);
      await admin.end();
    }
    await proxy?.close();
  };

  try {
    proxy = await startPgWsProxy({ port: 0, host: "127.0.0.1", allowedTargets: [pg] });
    configureNeonForLocalProxy(neonConfig, proxy.port);
    admin = new Pool({ connectionString: `postgres://postgres@${pg}/postgres` });
    await admin.query(`CREATE DATABASE ${name}`);
    const migrator = new Client(`postgres://postgres@${pg}/${name}`);
    await migrator.connect();
    try {
      await migrate(migrator, join(repoRoot, "db", "migrations"));
    } finally {
      await migrator.end();
    }
    owner = createDb({ connectionString: `postgres://postgres@${pg}/${name}`, max: 2 });
  } catch (error) {
    await close();
    throw error;
  }

  const localProxyPort = proxy.port;
  return {
    name,
    owner,
    connectAs(role) {
      const conn = createDb({
        connectionString: `postgres://${role}@${pg}/${name}`,
        localProxyPort,
        max: 1,
      });
      roles.push(conn);
      return conn;
    },
    close,
  };
}

/** The SQLSTATE of a driver error, through drizzle's DrizzleQueryError wrapper. */
export function sqlState(error: unknown): string | undefined {
  for (let e = error as { code?: unknown; cause?: unknown } | undefined; e; e = e.cause as never) {
    if (typeof e.code === "string") return e.code;
  }
  return undefined;
}

/** Awaits `promise`, which must fail with SQLSTATE `code`. */
export async function expectSqlState(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected SQLSTATE ${code}, but it succeeded`).toBeDefined();
  expect(sqlState(error)).toBe(code);
}
