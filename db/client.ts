import { neonConfig, Pool } from "@neondatabase/serverless";
import { drizzle, type NeonDatabase } from "drizzle-orm/neon-serverless";
import { configureNeonForLocalProxy } from "./neon-local-proxy.js";
import * as schema from "./schema/index.js";

export type Schema = typeof schema;
export type Db = NeonDatabase<Schema>;

export interface DbOptions {
  /** `postgres://fulcrum_app@host:port/db` (the application role; RLS applies to it). */
  connectionString: string;
  /**
   * Port of the local WebSocket-to-TCP proxy (`scripts/lib/pg-ws-proxy.ts`) when the
   * database is a plain PostgreSQL rather than Neon. Sets the Neon driver's global
   * settings, as the driver only has global ones.
   */
  localProxyPort?: number;
  /** Pool size; the Neon default otherwise. */
  max?: number;
}

/**
 * The one database handle: drizzle over a Neon `Pool` (WebSocket, so transactions and
 * therefore tenant context work). Touch tenant tables only inside `withTenant`
 * (db/tenant-context.ts). Call `close()` when done.
 *
 * @example const { db, close } = createDb({ connectionString: process.env.DATABASE_URL! });
 */
export function createDb(options: DbOptions): { db: Db; pool: Pool; close: () => Promise<void> } {
  if (options.localProxyPort !== undefined) {
    configureNeonForLocalProxy(neonConfig, options.localProxyPort);
  }
  const pool = new Pool({
    connectionString: options.connectionString,
    ...(options.max !== undefined ? { max: options.max } : {}),
  });
  const db = drizzle({ client: pool, schema });
  return { db, pool, close: () => pool.end() };
}
