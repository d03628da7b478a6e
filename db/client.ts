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
  /**
   * Give up connecting after this long (default 5 s), so an unreachable database is a
   * prompt Unavailable rather than a request that hangs until the caller's timeout.
   */
  connectionTimeoutMillis?: number;
  /**
   * Receives errors of idle pooled connections (the server or the proxy went away).
   * Without a listener such an error would crash the process; the next query simply
   * opens a new connection, or fails with Unavailable if the database is still gone.
   */
  onIdleError?: (error: Error) => void;
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
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 5_000,
    ...(options.max !== undefined ? { max: options.max } : {}),
  });
  pool.on("error", (error: Error) => options.onIdleError?.(error));
  const db = drizzle({ client: pool, schema });
  return { db, pool, close: () => pool.end() };
}
