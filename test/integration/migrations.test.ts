import { randomBytes } from "node:crypto";
import { appendFile, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { Client, neonConfig, Pool } from "@neondatabase/serverless";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { catalogSnapshot, withoutMigrationsTable } from "../../db/catalog-snapshot.js";
import {
  loadMigrations,
  MigrationError,
  migrate,
  rollback,
  type SqlConnection,
  status,
} from "../../db/migrate.js";
import { configureNeonForLocalProxy } from "../../db/neon-local-proxy.js";
import { type PgWsProxy, startPgWsProxy } from "../../scripts/lib/pg-ws-proxy.js";
import { repoRoot } from "../../scripts/services/service.js";
import { dropTempDatabase } from "../harness/temp-database.js";

// Each scenario gets its own fresh database (unique name, dropped at the end), reached as
// the functions reach Neon: Neon driver → local WebSocket proxy → PostgreSQL.
const PG = inject("pgAddress");
const REAL_DIR = join(repoRoot, "db", "migrations");
const prefix = `fulcrum_mig_${randomBytes(4).toString("hex")}`;

let proxy: PgWsProxy;
let admin: Pool;
const databases: string[] = [];
const clients: Client[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  proxy = await startPgWsProxy({ port: 0, host: "127.0.0.1", allowedTargets: [PG] });
  configureNeonForLocalProxy(neonConfig, proxy.port);
  admin = new Pool({ connectionString: `postgres://postgres@${PG}/postgres` });
});

afterAll(async () => {
  await Promise.allSettled(clients.map((c) => c.end()));
  if (admin) {
    for (const db of databases) {
      await dropTempDatabase(admin, db);
    }
    await admin.end();
  }
  await proxy?.close();
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

async function freshDatabase(): Promise<string> {
  const name = `${prefix}_${databases.length}`;
  await admin.query(`CREATE DATABASE ${name}`);
  databases.push(name);
  return name;
}

async function connect(database: string): Promise<Client & SqlConnection> {
  const client = new Client(`postgres://postgres@${PG}/${database}`);
  await client.connect();
  clients.push(client);
  return client;
}

/** A temp migrations dir: `{ "0001_a": ["up sql", "down sql"] }`. */
async function migrationsDir(files: Record<string, [string, string]>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "fulcrum-migrations-"));
  dirs.push(dir);
  for (const [base, [up, down]] of Object.entries(files)) {
    await writeFile(join(dir, `${base}.up.sql`), up);
    await writeFile(join(dir, `${base}.down.sql`), down);
  }
  return dir;
}

async function appliedVersions(conn: SqlConnection): Promise<string[]> {
  const { rows } = await conn.query("SELECT version FROM schema_migrations ORDER BY version");
  return rows.map((r) => String(r.version));
}

/** Memberships among the project's roles (cluster-wide). */
async function memberships(conn: SqlConnection): Promise<Record<string, unknown>[]> {
  const { rows } = await conn.query(
    `SELECT m.member::regrole::text AS member, m.roleid::regrole::text AS role
      FROM pg_auth_members m
      WHERE m.member::regrole::text LIKE 'fulcrum%' OR m.roleid::regrole::text LIKE 'fulcrum%'
      ORDER BY 1, 2`,
  );
  return rows;
}

async function tables(conn: SqlConnection): Promise<string[]> {
  const { rows } = await conn.query(
    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
  );
  return rows.map((r) => String(r.tablename));
}

describe("the project's migrations", () => {
  it("go up, all the way down and up again to the same schema", async () => {
    const conn = await connect(await freshDatabase());
    const files = await loadMigrations(REAL_DIR);
    const { roles: _, ...pristine } = await catalogSnapshot(conn);

    const applied = await migrate(conn, REAL_DIR);
    expect(applied.map((m) => m.version)).toEqual(files.map((f) => f.version));
    const afterUp = await status(conn, REAL_DIR);
    expect(afterUp.map((s) => s.state)).toEqual(files.map(() => "applied"));
    for (const s of afterUp) expect(s.appliedAt).toBeInstanceOf(Date);
    const first = await catalogSnapshot(conn);

    // What 0001 sets up: the application role and its grants on this database; and 0003's
    // fulcrum_auth, which nothing can log in as (only its SECURITY DEFINER function acts as it),
    // and fulcrum_platform, TenantService's login role.
    const attributes = {
      rolsuper: false,
      rolbypassrls: false,
      rolcreatedb: false,
      rolcreaterole: false,
      rolreplication: false,
    };
    expect(first.roles).toEqual([
      { rolname: "fulcrum_app", ...attributes, rolcanlogin: true },
      { rolname: "fulcrum_auth", ...attributes, rolcanlogin: false },
      { rolname: "fulcrum_platform", ...attributes, rolcanlogin: true },
    ]);
    // fulcrum_platform is fulcrum_app (inherited) plus `tenants`, and nothing else here.
    expect(await memberships(conn)).toEqual([{ member: "fulcrum_platform", role: "fulcrum_app" }]);
    const platformGrants = [
      ...first.databaseAcl,
      ...first.schemaAcl,
      ...first.relationAcl,
      ...first.defaultAcl,
    ].filter((g) => g.grantee === "fulcrum_platform");
    expect(platformGrants.map((g) => `${g.object}:${g.privilege}`).sort()).toEqual(
      ["tenants:INSERT", "tenants:SELECT", "tenants:UPDATE"].sort(),
    );
    const authGrants = [...first.schemaAcl, ...first.relationAcl].filter(
      (g) => g.grantee === "fulcrum_auth",
    );
    expect(authGrants.map((g) => `${g.object}:${g.privilege}`).sort()).toEqual(
      ["api_keys:SELECT", "public:USAGE", "tenants:SELECT", "users:SELECT"].sort(),
    );
    expect(first.functions.map((f) => `${f.proname}(${f.args})`)).toEqual([
      "fulcrum_authenticate_api_key(p_key_hash text)",
    ]);
    const grants = [...first.databaseAcl, ...first.schemaAcl, ...first.defaultAcl].filter(
      (g) => g.grantee === "fulcrum_app",
    );
    expect(grants.map((g) => `${g.object}:${g.privilege}`).sort()).toEqual(
      [
        "database:CONNECT",
        "public:USAGE",
        "r:DELETE",
        "r:INSERT",
        "r:SELECT",
        "r:UPDATE",
        "S:SELECT",
        "S:USAGE",
      ].sort(),
    );

    const reverted = await rollback(conn, REAL_DIR, Number.POSITIVE_INFINITY);
    expect(reverted.map((m) => m.version)).toEqual(files.map((f) => f.version).reverse());
    expect(await tables(conn)).toEqual(["schema_migrations"]);
    expect(await appliedVersions(conn)).toEqual([]);
    expect((await status(conn, REAL_DIR)).map((s) => s.state)).toEqual(files.map(() => "pending"));
    // The roles are cluster-wide and deliberately kept (see 0001's and 0003's downs); everything else in
    // this database is as it was before the first migration.
    const { roles: __, ...down } = withoutMigrationsTable(await catalogSnapshot(conn));
    expect(down).toEqual(pristine);
    // …and so is fulcrum_platform's membership in fulcrum_app (0003's down says why).
    expect(await memberships(conn)).toEqual([{ member: "fulcrum_platform", role: "fulcrum_app" }]);

    await migrate(conn, REAL_DIR);
    expect(await catalogSnapshot(conn)).toEqual(first);
  });
});

describe("0003_control_plane", () => {
  it("is undone exactly by its down: the schema is the one 0002 left", async () => {
    const conn = await connect(await freshDatabase());
    const files = await loadMigrations(REAL_DIR);
    // The project's 0001 and 0002 alone (same contents, so the checksums still match).
    const upTo0002 = Object.fromEntries(
      files
        .filter((f) => f.version < "0003")
        .map((f) => [basename(f.upPath, ".up.sql"), [f.up, f.down]] as [string, [string, string]]),
    );
    await migrate(conn, await migrationsDir(upTo0002));
    const { roles: _, ...before } = await catalogSnapshot(conn);

    expect((await migrate(conn, REAL_DIR)).map((m) => m.version)).toContain("0003");
    expect((await rollback(conn, REAL_DIR, files.length - 2)).map((m) => m.version)).toContain(
      "0003",
    );
    const { roles: __, ...after } = await catalogSnapshot(conn);
    expect(after).toEqual(before);
  });

  it("migrates a populated database down and up again without losing who keys act as", async () => {
    const conn = await connect(await freshDatabase());
    await migrate(conn, REAL_DIR);
    const tenant = "00000000-0000-4000-8000-000000000001";
    const admin = "00000000-0000-4000-8000-000000000002";
    const policy = "00000000-0000-4000-8000-000000000003";
    const wasm = Buffer.from("0061736d01000000", "hex");
    const seed: [string, unknown[]][] = [
      ["INSERT INTO tenants (id, name, slug) VALUES ($1, 'T', 't-populated')", [tenant]],
      [
        "INSERT INTO users (id, tenant_id, email, role) VALUES ($1, $2, 'a@t.example', 'admin')",
        [admin, tenant],
      ],
      // A tenant's first key: made by the platform operator, so it has no creator.
      [
        `INSERT INTO api_keys (tenant_id, name, prefix, key_hash, scopes, user_id)
         VALUES ($1, 'first key', 'fk_abcdefgh', repeat('a', 64), '{manage}', $2)`,
        [tenant, admin],
      ],
      ["INSERT INTO policies (id, tenant_id, name) VALUES ($1, $2, 'p')", [policy, tenant]],
      [
        `INSERT INTO policy_versions (tenant_id, policy_id, version, sha256, source_kind,
           rego_source, compile_status, wasm, wasm_sha256, definition, entrypoint)
         VALUES ($1, $2, 1, repeat('b', 64), 'rego', 'package fulcrum.policy', 'COMPILED',
           $3, encode(sha256($3), 'hex'), '{}', 'fulcrum/entry/result')`,
        [tenant, policy, wasm],
      ],
    ];
    for (const [sql, params] of seed) await conn.query(sql, params);
    // Back to 0002 (0003 and every later migration), then up again.
    const newer = (await loadMigrations(REAL_DIR)).filter((f) => f.version >= "0003").length;
    expect(await rollback(conn, REAL_DIR, newer)).toHaveLength(newer);
    await migrate(conn, REAL_DIR);
    const key = await conn.query("SELECT user_id FROM api_keys WHERE tenant_id = $1", [tenant]);
    expect(key.rows).toEqual([{ user_id: admin }]);
    const version = await conn.query(
      "SELECT compile_status, wasm, compile_errors FROM policy_versions WHERE policy_id = $1",
      [policy],
    );
    expect(version.rows[0]).toMatchObject({ compile_status: "FAILED", wasm: null });
    expect(JSON.stringify(version.rows[0]?.compile_errors)).toContain("save the policy again");
  });
});

describe("0004_governed_executions", () => {
  it("is undone exactly by its down: the schema is the one 0003 left", async () => {
    const conn = await connect(await freshDatabase());
    const files = await loadMigrations(REAL_DIR);
    const upTo0003 = Object.fromEntries(
      files
        .filter((f) => f.version < "0004")
        .map((f) => [basename(f.upPath, ".up.sql"), [f.up, f.down]] as [string, [string, string]]),
    );
    await migrate(conn, await migrationsDir(upTo0003));
    const { roles: _, ...before } = await catalogSnapshot(conn);

    expect((await migrate(conn, REAL_DIR)).map((m) => m.version)).toContain("0004");
    const newer = files.filter((f) => f.version >= "0004").length;
    expect((await rollback(conn, REAL_DIR, newer)).map((m) => m.version)).toContain("0004");
    const { roles: __, ...after } = await catalogSnapshot(conn);
    expect(after).toEqual(before);
  });
});

describe("migrate and rollback", () => {
  const good = {
    "0001_create_a": ["CREATE TABLE a (id int PRIMARY KEY);", "DROP TABLE a;"],
    "0002_create_b": ["CREATE TABLE b (id int PRIMARY KEY);", "DROP TABLE b;"],
  } satisfies Record<string, [string, string]>;

  it("rolls back N in reverse order, and refuses before anything when a down file is missing", async () => {
    const conn = await connect(await freshDatabase());
    const dir = await migrationsDir({
      ...good,
      "0003_create_c": ["CREATE TABLE c (id int);", "DROP TABLE c;"],
    });
    await migrate(conn, dir);
    expect((await rollback(conn, dir)).map((m) => m.version)).toEqual(["0003"]);
    expect(await appliedVersions(conn)).toEqual(["0001", "0002"]);

    await rm(join(dir, "0001_create_a.down.sql"));
    await expect(rollback(conn, dir, 2)).rejects.toThrow(/0001_create_a\.up\.sql has no \.down/);
    expect(await appliedVersions(conn)).toEqual(["0001", "0002"]);
    expect(await tables(conn)).toEqual(["a", "b", "schema_migrations"]);
  });

  it("leaves nothing of a failing migration, and names its file and line", async () => {
    const conn = await connect(await freshDatabase());
    const bad = "CREATE TABLE c (id int);\nINSERT INTO c VALUES (1);\nSELEC 1;\n";
    const dir = await migrationsDir({ ...good, "0003_bad": [bad, "DROP TABLE c;"] });

    const failure = migrate(conn, dir);
    await expect(failure).rejects.toBeInstanceOf(MigrationError);
    await expect(failure).rejects.toThrow(/0003_bad\.up\.sql:3 failed: syntax error/);
    expect(await appliedVersions(conn)).toEqual(["0001", "0002"]);
    expect(await tables(conn)).toEqual(["a", "b", "schema_migrations"]);

    // Never applied, so it may still be fixed; the next run applies it.
    await writeFile(join(dir, "0003_bad.up.sql"), "CREATE TABLE c (id int);");
    expect((await migrate(conn, dir)).map((m) => m.version)).toEqual(["0003"]);
  });

  it("refuses an applied migration that was edited or deleted", async () => {
    const conn = await connect(await freshDatabase());
    const dir = await migrationsDir(good);
    await migrate(conn, dir);
    await appendFile(join(dir, "0001_create_a.up.sql"), "\nALTER TABLE a ADD COLUMN x int;");
    await writeFile(join(dir, "0003_create_c.up.sql"), "CREATE TABLE c (id int);");
    await writeFile(join(dir, "0003_create_c.down.sql"), "DROP TABLE c;");

    await expect(migrate(conn, dir)).rejects.toThrow(/0001_create_a\.up\.sql was edited after/);
    await expect(rollback(conn, dir)).rejects.toThrow(/was edited after/);
    expect((await status(conn, dir)).map((s) => s.state)).toEqual([
      "changed",
      "applied",
      "pending",
    ]);
    expect(await tables(conn)).toEqual(["a", "b", "schema_migrations"]);

    await rm(join(dir, "0002_create_b.up.sql"));
    await rm(join(dir, "0002_create_b.down.sql"));
    expect((await status(conn, dir)).map((s) => `${s.version}:${s.state}`)).toEqual([
      "0001:changed",
      "0002:missing",
      "0003:pending",
    ]);
  });

  it("applies each migration once when runners race", async () => {
    const database = await freshDatabase();
    const dir = await migrationsDir({
      ...good,
      // Slow enough that the other runners are certainly waiting while it runs.
      "0003_slow": ["SELECT pg_sleep(0.3); CREATE TABLE c (id int);", "DROP TABLE c;"],
    });
    const runners = await Promise.all([1, 2, 3, 4].map(() => connect(database)));
    const results = await Promise.all(runners.map((conn) => migrate(conn, dir)));
    const versions = results.flatMap((applied) => applied.map((m) => m.version)).sort();
    expect(versions).toEqual(["0001", "0002", "0003"]);
    expect(await appliedVersions(runners[0] as Client)).toEqual(["0001", "0002", "0003"]);
  });

  it("refuses a layout it cannot trust, before touching the database", async () => {
    const noDown = await migrationsDir({});
    await writeFile(join(noDown, "0001_a.up.sql"), "SELECT 1;");
    await expect(loadMigrations(noDown)).rejects.toThrow(/has no \.down\.sql/);

    const ownTransaction = await migrationsDir({ "0001_a": ["BEGIN;\nSELECT 1;\nCOMMIT;", ""] });
    await expect(loadMigrations(ownTransaction)).rejects.toThrow(/no BEGIN\/COMMIT/);

    const badName = await migrationsDir({ "1_A": ["SELECT 1;", ""] });
    await expect(loadMigrations(badName)).rejects.toThrow(/not a migration name/);
  });
});
