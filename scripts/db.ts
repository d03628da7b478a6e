import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { neonConfig, Pool, type PoolClient } from "@neondatabase/serverless";
import { MigrationError, migrate, rollback, status } from "../db/migrate.js";
import { configureNeonForLocalProxy } from "../db/neon-local-proxy.js";
import { type PgWsProxy, startPgWsProxy } from "./lib/pg-ws-proxy.js";
import { ensurePostgres } from "./services/ensure-services.js";
import { repoRoot } from "./services/service.js";

/**
 * `npm run db:migrate`, `npm run db:rollback [N|all]`, `npm run db:status` against
 * DATABASE_URL (default postgres://postgres@127.0.0.1:5432/fulcrum), through the Neon
 * driver. A local address gets a PostgreSQL (ensurePostgres) and the local WebSocket proxy;
 * any other is reached the way the deployed functions reach Neon. The database is created
 * when it does not exist.
 */
const DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/fulcrum";
const MIGRATIONS_DIR = join(repoRoot, "db", "migrations");
const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);
const USAGE = "usage: tsx scripts/db.ts migrate | rollback [N|all] | status";

async function main(argv: string[]): Promise<void> {
  const [command, arg] = argv;
  const run = commandFor(command, arg);
  const url = new URL(process.env.DATABASE_URL ?? DEFAULT_URL);
  let proxy: PgWsProxy | undefined;
  if (LOCAL_HOSTS.has(url.hostname)) {
    const pg = new URL((await ensurePostgres({ url: withDatabase(url, "postgres") })).url);
    url.host = pg.host;
    proxy = await startPgWsProxy({ allowedTargets: [`${pg.hostname}:${pg.port || "5432"}`] });
    configureNeonForLocalProxy(neonConfig, proxy.port);
  }
  const pool = new Pool({ connectionString: url.toString(), max: 1 });
  try {
    const client = await connectCreating(pool, url);
    try {
      await run(client);
    } finally {
      client.release();
    }
  } finally {
    await pool.end();
    await proxy?.close();
  }
}

function commandFor(
  command: string | undefined,
  arg: string | undefined,
): (client: PoolClient) => Promise<void> {
  switch (command) {
    case "migrate":
      return async (client) => {
        const applied = await migrate(client, MIGRATIONS_DIR);
        if (applied.length === 0) console.log("nothing to migrate");
        for (const m of applied) console.log(`applied   ${m.version}  ${m.description}`);
      };
    case "rollback": {
      const steps = arg === "all" ? Number.POSITIVE_INFINITY : Number(arg ?? "1");
      if (!(steps === Number.POSITIVE_INFINITY || (Number.isInteger(steps) && steps >= 1))) {
        throw new MigrationError(`rollback takes a positive number or "all", got ${arg}\n${USAGE}`);
      }
      return async (client) => {
        const reverted = await rollback(client, MIGRATIONS_DIR, steps);
        if (reverted.length === 0) console.log("nothing to roll back");
        for (const m of reverted) console.log(`reverted  ${m.version}  ${m.description}`);
      };
    }
    case "status":
      return async (client) => {
        const rows = await status(client, MIGRATIONS_DIR);
        console.log(
          table([
            ["version", "description", "applied_at"],
            ...rows.map((r) => [
              r.version,
              r.description,
              r.appliedAt ? `${r.appliedAt.toISOString()}${flag(r.state)}` : "pending",
            ]),
          ]),
        );
        if (rows.some((r) => r.state === "changed" || r.state === "missing")) {
          process.exitCode = 1;
        }
      };
    default:
      throw new MigrationError(USAGE);
  }
}

function flag(state: string): string {
  if (state === "changed") return "  EDITED AFTER IT WAS APPLIED";
  if (state === "missing") return "  FILES MISSING";
  return "";
}

/** Connects; on "database does not exist" creates it from the `postgres` database. */
async function connectCreating(pool: Pool, url: URL): Promise<PoolClient> {
  try {
    return await pool.connect();
  } catch (error) {
    if ((error as { code?: string }).code !== "3D000") throw error;
  }
  const name = decodeURIComponent(url.pathname.slice(1));
  const admin = new Pool({ connectionString: withDatabase(url, "postgres"), max: 1 });
  try {
    await admin.query(`CREATE DATABASE "${name.replaceAll('"', '""')}"`);
    console.log(`created database ${name}`);
  } catch (error) {
    // 42P04 duplicate_database: another runner created it meanwhile.
    if ((error as { code?: string }).code !== "42P04") throw error;
  } finally {
    await admin.end();
  }
  return pool.connect();
}

function withDatabase(url: URL, database: string): string {
  const copy = new URL(url);
  copy.pathname = `/${database}`;
  return copy.toString();
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    // A MigrationError is a message for people; anything else keeps its stack.
    console.error(error instanceof MigrationError ? error.message : error);
    process.exitCode = 1;
  });
}
