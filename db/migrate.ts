import { loadMigrations, MigrationError, type MigrationFile } from "./migration-files.js";

export { loadMigrations, MigrationError, type MigrationFile } from "./migration-files.js";

/**
 * One dedicated database connection (a Neon `Client`, or a `PoolClient` from
 * `pool.connect()`): the advisory lock and each migration's transaction belong to a
 * session, so a bare Pool, which may hand every query to another connection, will not do.
 */
export interface SqlConnection {
  query(text: string, params?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
}

export interface MigrationStatus {
  version: string;
  description: string;
  /**
   * applied; pending; changed: applied, but its up file differs from what was applied;
   * missing: recorded as applied, but no longer on disk.
   */
  state: "applied" | "pending" | "changed" | "missing";
  appliedAt: Date | null;
}

// Any constant will do: advisory locks are scoped to the current database.
const LOCK_KEY = "7311240815001";

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS public.schema_migrations (
  version text PRIMARY KEY,
  description text NOT NULL,
  applied_at timestamptz NOT NULL DEFAULT now(),
  checksum text NOT NULL
)`;

interface Applied {
  version: string;
  description: string;
  checksum: string;
  appliedAt: Date;
}

/**
 * Applies every pending migration in `dir`, in version order, each in its own transaction
 * together with its schema_migrations row; stops at the first failure (that migration
 * leaves nothing behind). Holds an advisory lock so concurrent runners apply each version
 * once. Refuses to start if an applied migration was edited or deleted, or if a pending
 * one is older than the newest applied one.
 *
 * @example const applied = await migrate(client, "db/migrations");
 */
export async function migrate(conn: SqlConnection, dir: string): Promise<MigrationFile[]> {
  const files = await loadMigrations(dir);
  return withLock(conn, async () => {
    await conn.query(CREATE_TABLE);
    const applied = await readApplied(conn);
    checkHistory(files, applied);
    const newest = [...applied.keys()].sort().at(-1);
    const pending = files.filter((file) => !applied.has(file.version));
    const early = pending.find((file) => newest !== undefined && file.version < newest);
    if (early) {
      throw new MigrationError(
        `${early.upPath} is pending but older than the applied ${newest}: give it a new version`,
      );
    }
    for (const file of pending) {
      await inTransaction(conn, file.upPath, file.up, () =>
        conn.query(
          "INSERT INTO public.schema_migrations (version, description, checksum) VALUES ($1, $2, $3)",
          [file.version, file.description, file.checksum],
        ),
      );
    }
    return pending;
  });
}

/**
 * Reverts the newest `steps` applied migrations (Infinity: all), newest first, each down
 * file in one transaction with the removal of its schema_migrations row. Every file is
 * read and checked before anything runs, so a missing down file changes nothing.
 *
 * @example const reverted = await rollback(client, "db/migrations", 2);
 */
export async function rollback(
  conn: SqlConnection,
  dir: string,
  steps = 1,
): Promise<MigrationFile[]> {
  if (!(steps === Number.POSITIVE_INFINITY || (Number.isInteger(steps) && steps >= 1))) {
    throw new MigrationError(`rollback steps must be a positive integer, got ${steps}`);
  }
  const files = await loadMigrations(dir);
  return withLock(conn, async () => {
    if (!(await tableExists(conn))) return [];
    const applied = await readApplied(conn);
    checkHistory(files, applied);
    const targets = files
      .filter((file) => applied.has(file.version))
      .reverse()
      .slice(0, steps);
    for (const file of targets) {
      await inTransaction(conn, file.downPath, file.down, () =>
        conn.query("DELETE FROM public.schema_migrations WHERE version = $1", [file.version]),
      );
    }
    return targets;
  });
}

/** Every version on disk or in schema_migrations, oldest first; changes nothing. */
export async function status(conn: SqlConnection, dir: string): Promise<MigrationStatus[]> {
  const files = await loadMigrations(dir);
  const applied = (await tableExists(conn)) ? await readApplied(conn) : new Map<string, Applied>();
  const rows: MigrationStatus[] = files.map((file) => {
    const row = applied.get(file.version);
    const state = !row ? "pending" : row.checksum === file.checksum ? "applied" : "changed";
    return {
      version: file.version,
      description: file.description,
      state,
      appliedAt: row?.appliedAt ?? null,
    };
  });
  for (const row of applied.values()) {
    if (!files.some((file) => file.version === row.version)) {
      rows.push({ ...row, state: "missing" });
    }
  }
  return rows.sort((a, b) => a.version.localeCompare(b.version));
}

/** An applied migration must still be on disk, byte for byte. */
function checkHistory(files: MigrationFile[], applied: Map<string, Applied>): void {
  for (const row of applied.values()) {
    const file = files.find((f) => f.version === row.version);
    if (!file) {
      throw new MigrationError(
        `migration ${row.version} (${row.description}) is applied but its files are gone`,
      );
    }
    if (file.checksum !== row.checksum) {
      throw new MigrationError(
        `${file.upPath} was edited after it was applied (checksum ${row.checksum.slice(0, 12)}… ` +
          `now ${file.checksum.slice(0, 12)}…): never edit an applied migration, add a new one`,
      );
    }
  }
}

async function withLock<T>(conn: SqlConnection, fn: () => Promise<T>): Promise<T> {
  await conn.query("SELECT pg_advisory_lock($1::bigint)", [LOCK_KEY]);
  try {
    return await fn();
  } finally {
    await conn.query("SELECT pg_advisory_unlock($1::bigint)", [LOCK_KEY]);
  }
}

async function inTransaction(
  conn: SqlConnection,
  path: string,
  sql: string,
  record: () => Promise<unknown>,
): Promise<void> {
  await conn.query("BEGIN");
  try {
    try {
      // No parameters: the simple query protocol, which runs a file of many statements.
      await conn.query(sql);
    } catch (error) {
      throw new MigrationError(`${path}${lineOf(sql, error)} failed: ${messageOf(error)}`, {
        cause: error,
      });
    }
    await record();
    await conn.query("COMMIT");
  } catch (error) {
    await conn.query("ROLLBACK").catch(() => {});
    throw error;
  }
}

async function tableExists(conn: SqlConnection): Promise<boolean> {
  const { rows } = await conn.query(
    "SELECT to_regclass('public.schema_migrations') IS NOT NULL AS present",
  );
  return rows[0]?.present === true;
}

async function readApplied(conn: SqlConnection): Promise<Map<string, Applied>> {
  const { rows } = await conn.query(
    "SELECT version, description, checksum, applied_at FROM public.schema_migrations ORDER BY version",
  );
  return new Map(
    rows.map((r) => [
      String(r.version),
      {
        version: String(r.version),
        description: String(r.description),
        checksum: String(r.checksum),
        appliedAt: new Date(r.applied_at as string | Date),
      },
    ]),
  );
}

/** PostgreSQL reports a character offset into the file; people want a line. */
function lineOf(sql: string, error: unknown): string {
  const position = Number((error as { position?: string }).position);
  if (!Number.isInteger(position) || position < 1) return "";
  return `:${sql.slice(0, position - 1).split("\n").length}`;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
