/**
 * Versioned ClickHouse migrations: `db/clickhouse/migrations/NNNN_slug.up.sql` and
 * `.down.sql`, the same layout as the PostgreSQL ones (read by db/migration-files.ts),
 * recorded in the database's own `schema_migrations`.
 *
 * ClickHouse has no transactions for DDL, so each file is applied statement by
 * statement and recorded after it succeeded; the DDL uses IF [NOT] EXISTS so a run
 * that died half way can simply be repeated. Concurrent runners are not locked out:
 * run migrations from one place (deploy step, test harness).
 *
 * CLI: `tsx db/clickhouse/migrate.ts migrate|rollback|status`, configured by
 * CLICKHOUSE_URL / CLICKHOUSE_USER / CLICKHOUSE_PASSWORD / CLICKHOUSE_DATABASE.
 */
import { fileURLToPath } from "node:url";
import { runIfMain } from "../../scripts/lib/cli.js";
import { loadMigrations, MigrationError, type MigrationFile } from "../migration-files.js";
import { type ClickHouseConfig, createClickHouse } from "./client.js";

export const CLICKHOUSE_MIGRATIONS_DIR = fileURLToPath(new URL("./migrations", import.meta.url));

export interface ClickHouseMigrationStatus {
  version: string;
  description: string;
  state: "applied" | "pending" | "missing";
  appliedAt: string | null;
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version UInt32,
  name String,
  applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
) ENGINE = MergeTree ORDER BY version`;

/**
 * Creates the database if missing, then applies every pending migration in order.
 *
 * @example const applied = await migrateClickHouse({ url, database: "fulcrum" });
 */
export async function migrateClickHouse(
  config: ClickHouseConfig,
  dir = CLICKHOUSE_MIGRATIONS_DIR,
): Promise<MigrationFile[]> {
  const files = await loadMigrations(dir);
  // The database may not exist yet: this connection names none.
  const server = createClickHouse({ ...config, database: "default" });
  try {
    await server.command({ query: `CREATE DATABASE IF NOT EXISTS ${identifier(config.database)}` });
  } finally {
    await server.close();
  }
  return withClient(config, async (client) => {
    await client.command({ query: CREATE_TABLE });
    const applied = await readApplied(client);
    const pending = files.filter((file) => !applied.has(Number(file.version)));
    for (const file of pending) {
      await runFile(client, file.upPath, file.up);
      await client.insert({
        table: "schema_migrations",
        values: [{ version: Number(file.version), name: file.description }],
        format: "JSONEachRow",
      });
    }
    return pending;
  });
}

/** Reverts the newest applied migration; [] when none is applied. */
export async function rollbackClickHouse(
  config: ClickHouseConfig,
  dir = CLICKHOUSE_MIGRATIONS_DIR,
): Promise<MigrationFile[]> {
  const files = await loadMigrations(dir);
  return withClient(config, async (client) => {
    if (!(await tableExists(client))) return [];
    const newest = [...(await readApplied(client)).keys()].sort((a, b) => a - b).at(-1);
    if (newest === undefined) return [];
    const file = files.find((f) => Number(f.version) === newest);
    if (!file) throw new MigrationError(`migration ${newest} is applied but its files are gone`);
    await runFile(client, file.downPath, file.down);
    // A mutation; wait for it so `status` right after sees the row gone.
    await client.command({
      query: "ALTER TABLE schema_migrations DELETE WHERE version = {version:UInt32}",
      query_params: { version: newest },
      clickhouse_settings: { mutations_sync: "1" },
    });
    return [file];
  });
}

/** Every version on disk or recorded, oldest first; changes nothing. */
export async function clickHouseStatus(
  config: ClickHouseConfig,
  dir = CLICKHOUSE_MIGRATIONS_DIR,
): Promise<ClickHouseMigrationStatus[]> {
  const files = await loadMigrations(dir);
  if (!(await databaseExists(config))) {
    return files.map((f) => ({ ...pick(f), state: "pending", appliedAt: null }));
  }
  return withClient(config, async (client) => {
    const applied = (await tableExists(client)) ? await readApplied(client) : new Map();
    const rows: ClickHouseMigrationStatus[] = files.map((file) => ({
      ...pick(file),
      state: applied.has(Number(file.version)) ? "applied" : "pending",
      appliedAt: applied.get(Number(file.version))?.applied_at ?? null,
    }));
    for (const [version, row] of applied) {
      if (!files.some((file) => Number(file.version) === version)) {
        rows.push({
          version: String(version).padStart(4, "0"),
          description: row.name,
          state: "missing",
          appliedAt: row.applied_at,
        });
      }
    }
    return rows.sort((a, b) => a.version.localeCompare(b.version));
  });
}

type Client = ReturnType<typeof createClickHouse>;

async function withClient<T>(config: ClickHouseConfig, fn: (client: Client) => Promise<T>) {
  const client = createClickHouse(config);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** The HTTP interface takes one statement per request. */
async function runFile(client: Client, path: string, sql: string): Promise<void> {
  for (const statement of statements(sql)) {
    try {
      await client.command({ query: statement });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      throw new MigrationError(`${path} failed: ${message}`, { cause: error });
    }
  }
}

/** Splits on `;` at a line end, after dropping `--` comment lines (no `;` inside strings here). */
export function statements(sql: string): string[] {
  return sql
    .split("\n")
    .filter((line) => !line.trimStart().startsWith("--"))
    .join("\n")
    .split(/;\s*$/m)
    .map((s) => s.trim())
    .filter(Boolean);
}

const pick = (file: MigrationFile) => ({ version: file.version, description: file.description });

async function databaseExists(config: ClickHouseConfig): Promise<boolean> {
  return withClient({ ...config, database: "default" }, async (client) => {
    const result = await client.query({
      query: "SELECT count() AS n FROM system.databases WHERE name = {name:String}",
      query_params: { name: config.database },
      format: "JSONEachRow",
    });
    const [row] = await result.json<{ n: string }>();
    return Number(row?.n) > 0;
  });
}

async function tableExists(client: Client): Promise<boolean> {
  const result = await client.query({
    query:
      "SELECT count() AS n FROM system.tables WHERE database = currentDatabase() AND name = 'schema_migrations'",
    format: "JSONEachRow",
  });
  const [row] = await result.json<{ n: string | number }>();
  return Number(row?.n) > 0;
}

async function readApplied(client: Client) {
  const result = await client.query({
    query:
      "SELECT version, name, toString(applied_at) AS applied_at FROM schema_migrations ORDER BY version",
    format: "JSONEachRow",
  });
  const rows = await result.json<{ version: number; name: string; applied_at: string }>();
  return new Map(rows.map((row) => [Number(row.version), row]));
}

function identifier(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    throw new MigrationError(`not a database name: ${JSON.stringify(name)}`);
  }
  return name;
}

runIfMain(import.meta.url, async () => {
  const env = process.env;
  const config: ClickHouseConfig = {
    url: env.CLICKHOUSE_URL ?? "http://127.0.0.1:8123",
    database: env.CLICKHOUSE_DATABASE ?? "fulcrum",
    ...(env.CLICKHOUSE_USER ? { username: env.CLICKHOUSE_USER } : {}),
    ...(env.CLICKHOUSE_PASSWORD ? { password: env.CLICKHOUSE_PASSWORD } : {}),
  };
  const command = process.argv[2];
  const where = `${config.url} database ${config.database}`;
  if (command === "migrate") {
    const applied = await migrateClickHouse(config);
    console.log(
      applied.length
        ? `applied ${applied.map((f) => f.version).join(", ")} on ${where}`
        : `up to date: ${where}`,
    );
  } else if (command === "rollback") {
    const reverted = await rollbackClickHouse(config);
    console.log(
      reverted.length ? `reverted ${reverted[0]?.version} on ${where}` : "nothing to revert",
    );
  } else if (command === "status") {
    for (const row of await clickHouseStatus(config)) {
      console.log(
        `${row.version}  ${row.state.padEnd(8)}  ${row.description}  ${row.appliedAt ?? ""}`,
      );
    }
  } else {
    throw new Error("usage: tsx db/clickhouse/migrate.ts migrate|rollback|status");
  }
});
