import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Client, neonConfig, Pool } from "@neondatabase/serverless";
import { is } from "drizzle-orm";
import { getTableConfig, PgTable } from "drizzle-orm/pg-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { migrate } from "../../db/migrate.js";
import { configureNeonForLocalProxy } from "../../db/neon-local-proxy.js";
import * as schema from "../../db/schema/index.js";
import { type PgWsProxy, startPgWsProxy } from "../../scripts/lib/pg-ws-proxy.js";
import { repoRoot } from "../../scripts/services/service.js";
import { dropTempDatabase } from "../harness/temp-database.js";

// The drizzle schema (db/schema) describes what the migrations create: after migrating a
// fresh database, both list the same tables, columns (name, type, nullability, default or
// not, in order), constraints, indexes and RLS policies.
const PG = inject("pgAddress");
const DATABASE = `fulcrum_drift_${randomBytes(4).toString("hex")}`;

let proxy: PgWsProxy;
let admin: Pool;
let conn: Client;

const drizzleTables = Object.values(schema as Record<string, unknown>)
  .filter((value): value is PgTable => is(value, PgTable))
  .map((table) => getTableConfig(table))
  .sort((a, b) => a.name.localeCompare(b.name));

/** `numeric(18, 6)` (drizzle) and `numeric(18,6)` (format_type) are the same type. */
const normalizeType = (type: string) => type.replace(/\s*,\s*/g, ",");

/** A policy's roles as pg_policies lists them (`public` when none is named). */
function policyRoles(to: unknown): string {
  const list = (Array.isArray(to) ? to : [to ?? "public"]) as unknown[];
  return list.map((r) => (typeof r === "string" ? r : (r as { name: string }).name)).join(",");
}

async function rows<T>(text: string): Promise<T[]> {
  return (await conn.query(text)).rows as T[];
}

beforeAll(async () => {
  proxy = await startPgWsProxy({ port: 0, host: "127.0.0.1", allowedTargets: [PG] });
  configureNeonForLocalProxy(neonConfig, proxy.port);
  admin = new Pool({ connectionString: `postgres://postgres@${PG}/postgres` });
  await admin.query(`CREATE DATABASE ${DATABASE}`);
  conn = new Client(`postgres://postgres@${PG}/${DATABASE}`);
  await conn.connect();
  await migrate(conn, join(repoRoot, "db", "migrations"));
});

afterAll(async () => {
  await conn?.end();
  if (admin) {
    await dropTempDatabase(admin, DATABASE);
    await admin.end();
  }
  await proxy?.close();
});

describe("the drizzle schema matches the migrated database", () => {
  it("has the same tables", async () => {
    const tables = await rows<{ relname: string }>(
      `SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace
         AND relkind = 'r' AND relname <> 'schema_migrations' ORDER BY 1`,
    );
    expect(drizzleTables.map((t) => t.name)).toEqual(tables.map((t) => t.relname));
    expect(drizzleTables.length).toBe(14);
  });

  it("has the same columns: name, type, nullability, default, order", async () => {
    const db = await rows<{
      table: string;
      column: string;
      type: string;
      notNull: boolean;
      hasDefault: boolean;
    }>(
      `SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
          a.attnotnull AS "notNull", a.atthasdef AS "hasDefault"
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
          AND c.relname <> 'schema_migrations' AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY c.relname, a.attnum`,
    );
    const fromDrizzle = drizzleTables.flatMap((t) =>
      t.columns.map((c) => ({
        table: t.name,
        column: c.name,
        type: normalizeType(c.getSQLType()),
        notNull: c.notNull,
        hasDefault: c.hasDefault,
      })),
    );
    expect(fromDrizzle).toEqual(db.map((c) => ({ ...c, type: normalizeType(c.type) })));
  });

  it("has the same primary keys, unique constraints, foreign keys and check constraints", async () => {
    const db = await rows<{
      table: string;
      name: string;
      kind: string;
      columns: string[];
      refTable: string | null;
      refColumns: string[];
    }>(
      `SELECT c.conrelid::regclass::text AS table, c.conname AS name, c.contype AS kind,
          CASE WHEN c.contype = 'c' THEN ARRAY[]::text[] ELSE ARRAY(
            SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(num, ord)
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num ORDER BY k.ord)
          END AS columns,
          nullif(c.confrelid, 0)::regclass::text AS "refTable",
          ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(num, ord)
            JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num ORDER BY k.ord)
            AS "refColumns"
        FROM pg_constraint c
        WHERE c.connamespace = 'public'::regnamespace
          AND c.conrelid <> 'public.schema_migrations'::regclass`,
    );
    const fromDrizzle = drizzleTables.flatMap((t) => [
      ...t.columns
        .filter((c) => c.primary)
        .map((c) => ({ table: t.name, name: `${t.name}_pkey`, kind: "p", columns: [c.name] })),
      ...t.columns
        .filter((c) => c.isUnique)
        .map((c) => ({ table: t.name, name: c.uniqueName, kind: "u", columns: [c.name] })),
      // Composite primary keys (model_prices: tenant_id, model_id).
      ...t.primaryKeys.map((pk) => ({
        table: t.name,
        name: pk.getName(),
        kind: "p",
        columns: pk.columns.map((c) => c.name),
      })),
      ...t.uniqueConstraints.map((u) => ({
        table: t.name,
        name: u.getName(),
        kind: "u",
        columns: u.columns.map((c) => c.name),
      })),
      ...t.foreignKeys.map((fk) => {
        const ref = fk.reference();
        return {
          table: t.name,
          name: fk.getName(),
          kind: "f",
          columns: ref.columns.map((c) => c.name),
          refTable: getTableConfig(ref.foreignTable).name,
          refColumns: ref.foreignColumns.map((c) => c.name),
        };
      }),
      ...t.checks.map((c) => ({ table: t.name, name: c.name, kind: "c", columns: [] })),
    ]);
    const key = (c: { table: string; name?: string }) => `${c.table}.${c.name}`;
    const normalize = (list: Record<string, unknown>[]) =>
      list
        .map((c) => ({ refTable: null, refColumns: [], ...c }))
        .sort((a, b) => key(a as never).localeCompare(key(b as never)));
    expect(normalize(fromDrizzle)).toEqual(normalize(db));
  });

  it("has the same indexes (other than those of constraints)", async () => {
    const db = await rows<{
      table: string;
      name: string;
      columns: string[];
      unique: boolean;
      partial: boolean;
    }>(
      `SELECT i.indrelid::regclass::text AS table, i.indexrelid::regclass::text AS name,
          ARRAY(SELECT a.attname::text FROM unnest(i.indkey) WITH ORDINALITY k(num, ord)
            JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.num ORDER BY k.ord)
            AS columns,
          i.indisunique AS unique, i.indpred IS NOT NULL AS partial
        FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
        WHERE c.relnamespace = 'public'::regnamespace AND c.relname <> 'schema_migrations'
          AND NOT EXISTS (SELECT FROM pg_constraint k WHERE k.conindid = i.indexrelid)
        ORDER BY 2`,
    );
    const fromDrizzle = drizzleTables
      .flatMap((t) =>
        t.indexes.map((i) => ({
          table: t.name,
          name: i.config.name,
          columns: i.config.columns.map((c) => (c as { name: string }).name),
          unique: i.config.unique,
          partial: i.config.where !== undefined,
        })),
      )
      .sort((a, b) => String(a.name).localeCompare(String(b.name)));
    expect(fromDrizzle).toEqual(db);
  });

  it("has RLS enabled and forced, with the same policies (name, command, kind, roles), on exactly the tables drizzle says", async () => {
    const db = await rows<{ table: string; rls: boolean; forced: boolean; policies: string[] }>(
      `SELECT c.relname AS table, c.relrowsecurity AS rls, c.relforcerowsecurity AS forced,
          ARRAY(SELECT p.policyname::text || ':' || p.cmd || ':' || p.permissive || ':'
              || array_to_string(p.roles, ',')
            FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname)
            AS policies
        FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'
          AND c.relname <> 'schema_migrations'
        ORDER BY 1`,
    );
    const fromDrizzle = drizzleTables.map((t) => ({
      table: t.name,
      rls: t.enableRLS,
      // FORCE has no drizzle counterpart: the migration forces it wherever RLS is on.
      forced: t.enableRLS,
      policies: t.policies
        .map(
          (p) =>
            `${p.name}:${(p.for ?? "all").toUpperCase()}:${(p.as ?? "permissive").toUpperCase()}:${policyRoles(p.to)}`,
        )
        .sort(),
    }));
    expect(fromDrizzle).toEqual(db.map((t) => ({ ...t, policies: [...t.policies].sort() })));
    // The api-key authentication policies (0003) are the only ones not for everyone.
    const forAuth = fromDrizzle.flatMap((t) =>
      t.policies.filter((p) => !p.endsWith(":public")).map((p) => `${t.table}.${p}`),
    );
    expect(forAuth.sort()).toEqual([
      "api_keys.api_key_authentication:SELECT:PERMISSIVE:fulcrum_auth",
      "api_keys.api_key_authentication_last_used:UPDATE:PERMISSIVE:fulcrum_auth",
      "users.api_key_authentication:SELECT:PERMISSIVE:fulcrum_auth",
    ]);
    // Every table with tenant_id is isolated; tenants is the only one without it.
    for (const t of drizzleTables) {
      const hasTenant = t.columns.some((c) => c.name === "tenant_id");
      expect(t.enableRLS, t.name).toBe(hasTenant);
      expect(hasTenant, t.name).toBe(t.name !== "tenants");
    }
  });
});
